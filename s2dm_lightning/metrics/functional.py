"""Pure math of FVD and KVD on feature vectors (float64 torch; no networks, no state).

FVD (Unterthiner et al. 2018) is the Fréchet distance between Gaussians fitted to I3D features:

    d^2 = ||mu_r - mu_g||^2 + Tr(S_r) + Tr(S_g) - 2 Tr((S_r S_g)^{1/2})

KVD is the unbiased squared MMD with the polynomial kernel of KID (Binkowski et al. 2018):

    k(x, y) = (gamma x.y + coef0)^degree,  degree 3, gamma = 1/d, coef0 = 1
    MMD^2_u = sum_{i!=j} k(x_i,x_j) / (m(m-1)) + sum_{i!=j} k(y_i,y_j) / (n(n-1)) - 2 sum_{i,j} k(x_i,y_j) / (mn)
"""

from __future__ import annotations

import math
from typing import Any

import torch

_F64 = torch.float64


def mean_cov_from_sums(
    feature_sum: torch.Tensor, outer_sum: torch.Tensor, num_samples: int | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased covariance from streaming sums.

    Formula: ``mu = s / n``, ``S = (sum_i x_i x_i^T - n mu mu^T) / (n - 1)``.

    Args:
        feature_sum: sum of the features, (d,).
        outer_sum: sum of the outer products x x^T, (d, d).
        num_samples: n, at least 2.

    Returns:
        ``(mu, S)`` in float64.
    """
    n = int(num_samples)
    if n < 2:
        raise ValueError(f"an unbiased covariance needs at least 2 samples, got {n}")
    mu = feature_sum.to(_F64) / n
    cov = (outer_sum.to(_F64) - n * torch.outer(mu, mu)) / (n - 1)
    return mu, cov


def sums_from_mean_cov(
    mean: torch.Tensor, cov: torch.Tensor, num_samples: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`mean_cov_from_sums`: ``s = n mu``, ``sum x x^T = (n - 1) S + n mu mu^T``.

    Args:
        mean: (d,) mean.
        cov: (d, d) unbiased covariance.
        num_samples: n.

    Returns:
        ``(feature_sum, outer_sum)`` in float64.
    """
    mu, cov = mean.to(_F64), cov.to(_F64)
    return num_samples * mu, (num_samples - 1) * cov + num_samples * torch.outer(mu, mu)


def feature_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased (n - 1) covariance of (n, d) features, in float64."""
    x = features.to(_F64)
    return mean_cov_from_sums(x.sum(0), x.T @ x, x.shape[0])


def _zero_below_rank_tol(evals: torch.Tensor) -> torch.Tensor:
    """Set eigenvalues below the numerical-rank tolerance ``d * eps * max|lambda|`` (as
    ``numpy.linalg.matrix_rank``) to 0: they are round-off of true zeros (singular covariances when
    n <= d), and their square roots would otherwise add a spurious ~sqrt(eps) each."""
    tol = evals.shape[-1] * torch.finfo(evals.dtype).eps * evals.abs().max()
    return torch.where(evals > tol, evals, torch.zeros_like(evals))


def _psd_sqrt(mat: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric PSD matrix via eigh (round-off eigenvalues zeroed)."""
    evals, evecs = torch.linalg.eigh((mat + mat.T) / 2)
    return (evecs * _zero_below_rank_tol(evals).sqrt()) @ evecs.T


def trace_sqrt_product(cov1: torch.Tensor, cov2: torch.Tensor) -> torch.Tensor:
    """Tr((S1 S2)^{1/2}) for symmetric PSD S1, S2, by symmetric eigendecompositions.

    S1 S2 is similar to the symmetric PSD matrix M = S1^{1/2} S2 S1^{1/2} (S1 S2 = S1^{1/2} M S1^{-1/2}),
    so the eigenvalues of (S1 S2)^{1/2} are the square roots of M's eigenvalues and
    Tr((S1 S2)^{1/2}) = sum_k sqrt(lambda_k(M)). Using ``eigh`` on symmetric matrices keeps everything
    real and stable even for singular covariances (n <= d), where a general ``sqrtm`` of S1 S2 can
    return complex round-off. Eigenvalues below the numerical-rank tolerance (``d * eps * max``) and
    negative round-off are set to 0 before the square roots.

    Args:
        cov1: (d, d) symmetric PSD matrix.
        cov2: (d, d) symmetric PSD matrix.

    Returns:
        Scalar float64 tensor.
    """
    root1 = _psd_sqrt(cov1.to(_F64))
    m = root1 @ cov2.to(_F64) @ root1
    evals = torch.linalg.eigvalsh((m + m.T) / 2)
    return _zero_below_rank_tol(evals).sqrt().sum()


def frechet_distance(
    mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor
) -> torch.Tensor:
    """Fréchet distance between N(mu1, S1) and N(mu2, S2), in float64.

    Formula: ``||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^{1/2})`` (see
    :func:`trace_sqrt_product`; this is the real part of the scipy ``sqrtm`` formulation).

    Args:
        mu1: (d,) mean of the first distribution.
        cov1: (d, d) covariance of the first distribution.
        mu2: (d,) mean of the second distribution.
        cov2: (d, d) covariance of the second distribution.

    Returns:
        Scalar float64 tensor.
    """
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (mu1.shape[0],) * 2:
        raise ValueError(
            f"shape mismatch: mu1 {tuple(mu1.shape)}, cov1 {tuple(cov1.shape)}, "
            f"mu2 {tuple(mu2.shape)}, cov2 {tuple(cov2.shape)}"
        )
    mu1, mu2, cov1, cov2 = (t.to(_F64) for t in (mu1, mu2, cov1, cov2))
    diff = mu1 - mu2
    return diff.dot(diff) + torch.trace(cov1) + torch.trace(cov2) - 2.0 * trace_sqrt_product(cov1, cov2)


def frechet_distance_from_features(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Fréchet distance between Gaussians fitted (unbiased covariance) to (n, d) and (m, d) features."""
    return frechet_distance(*feature_statistics(real), *feature_statistics(fake))


def polynomial_kernel(
    x: torch.Tensor, y: torch.Tensor, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> torch.Tensor:
    """Polynomial kernel matrix ``K_ij = (gamma x_i . y_j + coef0)^degree`` in float64.

    Args:
        x: (m, d) features.
        y: (n, d) features.
        degree: kernel degree (3 for KVD/KID).
        gamma: scale of the dot product; None means 1 / d.
        coef0: additive constant (1 for KVD/KID).

    Returns:
        (m, n) float64 kernel matrix.
    """
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (gamma * (x.to(_F64) @ y.to(_F64).T) + coef0) ** degree


def mmd2_unbiased(
    x: torch.Tensor, y: torch.Tensor, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> torch.Tensor:
    """Unbiased squared MMD with the polynomial kernel (the formula in the module docstring).

    The within-set sums leave out the diagonal (i = j); the cross term uses all pairs.

    Args:
        x: (m, d) features, m >= 2.
        y: (n, d) features, n >= 2.
        degree: kernel degree.
        gamma: kernel scale; None means 1 / d.
        coef0: kernel constant.

    Returns:
        Scalar float64 tensor (may be slightly negative: the estimator is unbiased).
    """
    m, n = x.shape[0], y.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"unbiased MMD needs at least 2 samples per set, got {m} and {n}")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dimensions differ: {x.shape[1]} vs {y.shape[1]}")
    k_xx = polynomial_kernel(x, x, degree, gamma, coef0)
    k_yy = polynomial_kernel(y, y, degree, gamma, coef0)
    k_xy = polynomial_kernel(x, y, degree, gamma, coef0)
    term_xx = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    term_yy = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return term_xx + term_yy - 2.0 * k_xy.mean()


def kernel_distance(
    real: torch.Tensor,
    fake: torch.Tensor,
    subsets: int = 1,
    subset_size: int | None = None,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """KVD: mean and standard deviation of the unbiased polynomial MMD^2 over random subsets.

    With ``subset_size=None`` the whole sets are used once (``subsets`` must be 1; std is 0).
    Otherwise each of the ``subsets`` draws takes ``subset_size`` real and ``subset_size`` fake
    samples without replacement (independent permutations, as KID), from a generator seeded with
    ``seed``. The std is the population std (ddof=0), as torchmetrics' KID reports it.

    Args:
        real: (n_r, d) real features.
        fake: (n_f, d) generated features.
        subsets: number of random subsets.
        subset_size: samples per side in each subset; None for the full sets.
        degree: kernel degree.
        gamma: kernel scale; None means 1 / d.
        coef0: kernel constant.
        seed: seed of the subset sampling.

    Returns:
        ``(mean, std)`` as float64 scalar tensors.
    """
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    if subset_size is None:
        if subsets != 1:
            raise ValueError(
                "subsets > 1 needs a subset_size (random subsets of the full size would be equal)"
            )
        value = mmd2_unbiased(real, fake, degree, gamma, coef0)
        return value, torch.zeros_like(value)
    n_r, n_f = real.shape[0], fake.shape[0]
    if subset_size < 2 or subset_size > min(n_r, n_f):
        raise ValueError(
            f"subset_size must be in [2, min(n_real, n_fake)] = [2, {min(n_r, n_f)}], got {subset_size}"
        )
    gen = torch.Generator().manual_seed(seed)
    scores = []
    for _ in range(subsets):
        idx_r = torch.randperm(n_r, generator=gen)[:subset_size].to(real.device)
        idx_f = torch.randperm(n_f, generator=gen)[:subset_size].to(fake.device)
        scores.append(mmd2_unbiased(real[idx_r], fake[idx_f], degree, gamma, coef0))
    values = torch.stack(scores)
    return values.mean(), values.std(unbiased=False)


#: The one definition of "std over runs/seeds" (:func:`mean_std`), as the report states it.
STD_RULE = ("sample standard deviation (ddof=1; null for a single value) of the finite values; LVDM's script "
            "prints numpy.std (ddof=0), smaller by a factor sqrt((n - 1) / n)")


def mean_std(values: list[float | None]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof=1; None for a single value) of the finite values, and their count.

    The one definition of "mean and std over runs" of the evaluation report and of the ablation tables.
    """
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return {"mean": None, "std": None, "n": 0}
    mean = sum(finite) / len(finite)
    std = math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1)) if len(finite) > 1 else None
    return {"mean": mean, "std": std, "n": len(finite)}
