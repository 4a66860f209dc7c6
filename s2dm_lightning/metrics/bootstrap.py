"""Error bars of FVD and KVD: a bootstrap over the real and the generated clips (features resampled, nothing
generated again), and the interval of the difference between two generated sets scored on one real side.

A bootstrap resample draws n real and m generated clips with replacement; its FVD and KVD are the very
estimators of :mod:`.functional` applied to the resampled sets. They are computed from the draw's counts
``w`` (how often each clip was drawn), which gives the same numbers as indexing the features, without
copying them:

- FVD: ``mu = w X / n``, ``S = (X^T diag(w) X - n mu mu^T) / (n - 1)``, then :func:`frechet_distance`.
- KVD (unbiased MMD^2 over the resampled positions a != b): ``sum_{a != b} k(x_{i_a}, x_{i_b}) =
  w^T K w - w . diag(K)``, with the kernel matrices K computed once for all resamples.

The interval is the percentile interval of the resampled values (``confidence``, default 95 %). It
measures the estimator's spread from the finite sets of clips; FVD's plug-in estimator is also biased
upward by roughly ``Tr(S) / n`` terms, which the interval does not remove, so compare two numbers with
:func:`bootstrap_difference` (the bias is nearly the same for two sets of one size) rather than by
overlapping intervals.
"""

from __future__ import annotations

from typing import Any

import torch

from s2dm_lightning.metrics.functional import frechet_distance, polynomial_kernel

_F64 = torch.float64
#: The default number of resamples of the reports (``metrics.bootstrap_resamples``).
DEFAULT_RESAMPLES = 1000
METHOD = ("percentile bootstrap: real and generated clips resampled with replacement (features reused, "
          "nothing generated again)")


def resample_counts(n: int, num_resamples: int, generator: torch.Generator) -> torch.Tensor:
    """(num_resamples, n) float64 counts of n draws with replacement from n items, per resample."""
    draws = torch.randint(n, (num_resamples, n), generator=generator)
    counts = torch.zeros(num_resamples, n, dtype=_F64)
    return counts.scatter_add_(1, draws, torch.ones_like(draws, dtype=_F64))


def weighted_statistics(features: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased covariance of the resampled set whose counts are ``counts`` (n,) over (n, d) features."""
    x = features.to(_F64)
    n = float(counts.sum())
    mean = counts @ x / n
    cov = (x.T @ (counts[:, None] * x) - n * torch.outer(mean, mean)) / (n - 1)
    return mean, cov


def _mmd_terms(kernel: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Per resample: sum over positions a != b of kernel[i_a, i_b], divided by n (n - 1)."""
    n = counts.sum(1)
    pair_sums = ((counts @ kernel) * counts).sum(1) - counts @ kernel.diagonal()
    return pair_sums / (n * (n - 1))


class _Resampler:
    """The kernel matrices and features of one (real, generated) pair, scored under counts."""

    def __init__(self, real: torch.Tensor, fake: torch.Tensor, kernel: dict[str, Any]) -> None:
        self.real, self.fake = real.to(_F64).cpu(), fake.to(_F64).cpu()
        self.k_rr = polynomial_kernel(self.real, self.real, **kernel)
        self.k_ff = polynomial_kernel(self.fake, self.fake, **kernel)
        self.k_rf = polynomial_kernel(self.real, self.fake, **kernel)

    def kvd(self, real_counts: torch.Tensor, fake_counts: torch.Tensor) -> torch.Tensor:
        cross = ((real_counts @ self.k_rf) * fake_counts).sum(1) / (real_counts.sum(1) * fake_counts.sum(1))
        return _mmd_terms(self.k_rr, real_counts) + _mmd_terms(self.k_ff, fake_counts) - 2.0 * cross

    def fvd(self, real_counts: torch.Tensor, fake_counts: torch.Tensor) -> torch.Tensor:
        values = []
        for w_r, w_f in zip(real_counts, fake_counts, strict=True):
            values.append(frechet_distance(*weighted_statistics(self.real, w_r), *weighted_statistics(self.fake, w_f)))
        return torch.stack(values)


def percentile_interval(values: torch.Tensor, estimate: float, confidence: float) -> dict[str, float]:
    """``{"estimate", "low", "high", "std"}``: the (1 - confidence) / 2 and (1 + confidence) / 2 quantiles."""
    finite = values[torch.isfinite(values)]
    low, high = torch.quantile(finite, torch.tensor([(1 - confidence) / 2, (1 + confidence) / 2], dtype=_F64))
    return {"estimate": float(estimate), "low": float(low), "high": float(high), "std": float(finite.std())}


def _check(num_resamples: int, confidence: float, *sets: torch.Tensor) -> None:
    if num_resamples < 2:
        raise ValueError(f"metrics.bootstrap_resamples must be >= 2 (or 0 for none), got {num_resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"the confidence must lie in (0, 1), got {confidence}")
    for features in sets:
        if features.ndim != 2 or features.shape[0] < 2:
            raise ValueError(f"expected (n >= 2, d) features, got {tuple(features.shape)}")


def _chunks(num_resamples: int, size: int = 50) -> list[int]:
    return [min(size, num_resamples - start) for start in range(0, num_resamples, size)]


def bootstrap_fvd_kvd(
    real: torch.Tensor,
    fake: torch.Tensor,
    num_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = 0.95,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
) -> dict[str, Any]:
    """Percentile bootstrap intervals of FVD and KVD (full-set KVD) of (n, d) real and (m, d) generated features.

    Returns:
        ``{"fvd": {"estimate", "low", "high", "std"}, "kvd": {...}, "num_resamples", "seed", "confidence",
        "method"}``; ``estimate`` is the value on the sets themselves.
    """
    _check(num_resamples, confidence, real, fake)
    kernel = {"degree": degree, "gamma": gamma, "coef0": coef0}
    scorer = _Resampler(real, fake, kernel)
    generator = torch.Generator().manual_seed(seed)
    fvds, kvds = [], []
    for size in _chunks(num_resamples):
        w_r = resample_counts(len(scorer.real), size, generator)
        w_f = resample_counts(len(scorer.fake), size, generator)
        fvds.append(scorer.fvd(w_r, w_f))
        kvds.append(scorer.kvd(w_r, w_f))
    ones_r, ones_f = torch.ones(1, len(scorer.real), dtype=_F64), torch.ones(1, len(scorer.fake), dtype=_F64)
    return {
        "fvd": percentile_interval(torch.cat(fvds), float(scorer.fvd(ones_r, ones_f)[0]), confidence),
        "kvd": percentile_interval(torch.cat(kvds), float(scorer.kvd(ones_r, ones_f)[0]), confidence),
        "num_resamples": num_resamples, "seed": seed, "confidence": confidence, "method": METHOD,
    }


def bootstrap_difference(
    real: torch.Tensor,
    fake_a: torch.Tensor,
    fake_b: torch.Tensor,
    num_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = 0.95,
    paired: bool = False,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
) -> dict[str, Any]:
    """Interval of FVD(a) - FVD(b) and KVD(a) - KVD(b) for two generated sets scored against one real set.

    Every resample draws the real clips once and scores both sets against that same draw (the real side's
    noise is shared, as it is between two rows of a table); the generated sets are drawn independently, or
    with the same indices when ``paired`` (set b made for the same conditions, in the same order, as a).

    Returns:
        ``{"fvd_difference": {"estimate", "low", "high", "std"}, "kvd_difference": {...}, "num_resamples",
        "seed", "confidence", "paired", "method"}``.
    """
    _check(num_resamples, confidence, real, fake_a, fake_b)
    if paired and fake_a.shape[0] != fake_b.shape[0]:
        raise ValueError(f"paired resampling needs sets of one size, got {fake_a.shape[0]} and {fake_b.shape[0]}")
    kernel = {"degree": degree, "gamma": gamma, "coef0": coef0}
    score_a, score_b = _Resampler(real, fake_a, kernel), _Resampler(real, fake_b, kernel)
    generator = torch.Generator().manual_seed(seed)
    fvd_diffs, kvd_diffs = [], []
    for size in _chunks(num_resamples):
        w_r = resample_counts(len(score_a.real), size, generator)
        w_a = resample_counts(len(score_a.fake), size, generator)
        w_b = w_a if paired else resample_counts(len(score_b.fake), size, generator)
        fvd_diffs.append(score_a.fvd(w_r, w_a) - score_b.fvd(w_r, w_b))
        kvd_diffs.append(score_a.kvd(w_r, w_a) - score_b.kvd(w_r, w_b))
    ones = [torch.ones(1, len(s), dtype=_F64) for s in (score_a.real, score_a.fake, score_b.fake)]
    fvd_estimate = float(score_a.fvd(ones[0], ones[1])[0] - score_b.fvd(ones[0], ones[2])[0])
    kvd_estimate = float(score_a.kvd(ones[0], ones[1])[0] - score_b.kvd(ones[0], ones[2])[0])
    return {
        "fvd_difference": percentile_interval(torch.cat(fvd_diffs), fvd_estimate, confidence),
        "kvd_difference": percentile_interval(torch.cat(kvd_diffs), kvd_estimate, confidence),
        "num_resamples": num_resamples, "seed": seed, "confidence": confidence, "paired": paired,
        "method": METHOD + "; one real draw per resample shared by both sets",
    }
