"""The bootstrap error bars of FVD/KVD: exact resampled estimators, and coverage on Gaussian cases."""

from __future__ import annotations

import pytest
import torch

from s2dm_lightning.metrics.bootstrap import (
    _Resampler,
    bootstrap_difference,
    bootstrap_fvd_kvd,
    resample_counts,
)
from s2dm_lightning.metrics.functional import frechet_distance_from_features, mmd2_unbiased

F64 = torch.float64


def gaussian(n: int, d: int, shift: float, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=F64) + shift


def test_counts_give_the_estimators_of_the_indexed_resample():
    real, fake = gaussian(30, 5, 0.0, 1), gaussian(25, 5, 0.3, 2)
    generator = torch.Generator().manual_seed(0)
    idx_r, idx_f = torch.randint(30, (30,), generator=generator), torch.randint(25, (25,), generator=generator)
    w_r = torch.bincount(idx_r, minlength=30).to(F64)[None]
    w_f = torch.bincount(idx_f, minlength=25).to(F64)[None]
    scorer = _Resampler(real, fake, {"degree": 3, "gamma": None, "coef0": 1.0})
    # float64 sums in another order: equal to ~1e-12 relative
    assert float(scorer.fvd(w_r, w_f)[0]) == pytest.approx(float(frechet_distance_from_features(real[idx_r], fake[idx_f])), rel=1e-9)
    assert float(scorer.kvd(w_r, w_f)[0]) == pytest.approx(float(mmd2_unbiased(real[idx_r], fake[idx_f])), rel=1e-9)


def test_counts_are_draws_with_replacement():
    counts = resample_counts(7, 100, torch.Generator().manual_seed(3))
    assert counts.shape == (100, 7) and bool((counts.sum(1) == 7).all()) and bool((counts.max(1).values > 1).any())


def test_the_report_records_resamples_and_seed_and_is_reproducible():
    real, fake = gaussian(40, 3, 0.0, 4), gaussian(40, 3, 1.0, 5)
    first = bootstrap_fvd_kvd(real, fake, num_resamples=60, seed=11)
    again = bootstrap_fvd_kvd(real, fake, num_resamples=60, seed=11)
    assert first == again and first["num_resamples"] == 60 and first["seed"] == 11
    assert first["fvd"]["low"] < first["fvd"]["estimate"] < first["fvd"]["high"]
    assert first["fvd"]["estimate"] == pytest.approx(float(frechet_distance_from_features(real, fake)), rel=1e-9)
    with pytest.raises(ValueError, match="bootstrap_resamples"):
        bootstrap_fvd_kvd(real, fake, num_resamples=1)


# Coverage: the 95 % interval's true rate is 0.95; with T trials the observed rate has binomial std
# sqrt(0.95 * 0.05 / T) (0.022 for T = 100), so a rate below 0.95 - 3 std = 0.885 fails the test.
TRIALS, DIM, N, RESAMPLES = 100, 4, 150, 200


def test_difference_of_two_sets_from_one_distribution_covers_zero_at_the_stated_rate():
    covered_fvd = covered_kvd = 0
    for trial in range(TRIALS):
        real = gaussian(N, DIM, 0.0, 10_000 + trial)
        fake_a, fake_b = gaussian(N, DIM, 0.0, 20_000 + trial), gaussian(N, DIM, 0.0, 30_000 + trial)
        result = bootstrap_difference(real, fake_a, fake_b, num_resamples=RESAMPLES, seed=trial)
        covered_fvd += result["fvd_difference"]["low"] <= 0 <= result["fvd_difference"]["high"]
        covered_kvd += result["kvd_difference"]["low"] <= 0 <= result["kvd_difference"]["high"]
    assert covered_fvd / TRIALS >= 0.885, covered_fvd
    assert covered_kvd / TRIALS >= 0.885, covered_kvd


def test_a_real_difference_is_detected():
    # b shifted by 0.5 per dimension: true FVD(a) - FVD(b) = 0 - 4 * 0.25 = -1, about 5 interval std away
    detected = 0
    for trial in range(20):
        real = gaussian(N, DIM, 0.0, 40_000 + trial)
        fake_a, fake_b = gaussian(N, DIM, 0.0, 50_000 + trial), gaussian(N, DIM, 0.5, 60_000 + trial)
        result = bootstrap_difference(real, fake_a, fake_b, num_resamples=RESAMPLES, seed=trial)
        detected += result["fvd_difference"]["high"] < 0
    assert detected >= 18, detected


def test_the_fvd_interval_covers_the_true_fvd():
    # N(0, I) vs N(mu, I) with |mu|^2 = 4: the true FVD is 4 (equal covariances); the plug-in bias
    # d (1/n + 1/m) = 0.016 at n = m = 500 is small beside the interval's std (~0.2)
    trials, covered = 50, 0
    for trial in range(trials):
        real, fake = gaussian(500, DIM, 0.0, 70_000 + trial), gaussian(500, DIM, 1.0, 80_000 + trial)
        interval = bootstrap_fvd_kvd(real, fake, num_resamples=RESAMPLES, seed=trial)["fvd"]
        covered += interval["low"] <= 4.0 <= interval["high"]
    # binomial std at T = 50: 0.031; 0.95 - 3 std = 0.857
    assert covered / trials >= 0.857, covered
