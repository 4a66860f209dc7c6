"""The FVD/KVD math against independent references (scipy sqrtm, a direct O(n^2) NumPy MMD)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from s2dm_lightning.metrics.functional import (
    feature_statistics,
    frechet_distance,
    frechet_distance_from_features,
    kernel_distance,
    mean_cov_from_sums,
    mmd2_unbiased,
    sums_from_mean_cov,
)


def _scipy_frechet(x: np.ndarray, y: np.ndarray) -> float:
    """The StyleGAN-V / TF-GAN style reference: np.cov (n-1) and scipy.linalg.sqrtm(S1 S2), real part."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(root).real)


def _numpy_poly_mmd2_unbiased(x: np.ndarray, y: np.ndarray, degree: int = 3, coef0: float = 1.0) -> float:
    """Direct double loops: k(a, b) = (a.b / d + coef0)^degree; unbiased within-set sums skip i == j."""
    d = x.shape[1]

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (float(a @ b) / d + coef0) ** degree

    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return kxx + kyy - 2 * kxy


@pytest.mark.parametrize(("n1", "n2", "d"), [(300, 250, 32), (700, 600, 160)])
def test_frechet_distance_matches_scipy_sqrtm(n1: int, n2: int, d: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n1, d)) * 2.0 + 0.3
    mix = rng.normal(size=(d, d)) * (1.0 / np.sqrt(d))
    y = rng.normal(size=(n2, d)) @ mix + 0.1
    ours = frechet_distance_from_features(torch.from_numpy(x), torch.from_numpy(y)).item()
    ref = _scipy_frechet(x, y)
    assert abs(ours - ref) / abs(ref) < 1e-6


def test_frechet_distance_of_identical_sets_is_zero() -> None:
    x = torch.randn(2048, 400, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3 + 1
    assert abs(frechet_distance_from_features(x, x).item()) < 1e-6


def test_frechet_distance_of_identical_singular_sets_is_zero() -> None:
    """n < d: singular covariances; eigenvalue round-off must not leave a spurious distance."""
    x = torch.randn(100, 400, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 3 + 1
    assert abs(frechet_distance_from_features(x, x).item()) < 1e-6


def test_frechet_distance_closed_form_for_diagonal_gaussians() -> None:
    # N(0, diag(a)) vs N(m, diag(b)): ||m||^2 + sum (sqrt(a) - sqrt(b))^2
    a, b, m = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 9.0]), torch.tensor([1.0, 0.0, 2.0])
    got = frechet_distance(torch.zeros(3), torch.diag(a), m, torch.diag(b))
    expected = (m**2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum()
    assert got.dtype == torch.float64
    assert torch.allclose(got, expected.double(), atol=1e-12)


def test_mean_cov_sums_roundtrip_and_numpy_cov() -> None:
    x = torch.randn(57, 6, dtype=torch.float64)
    mu, cov = feature_statistics(x)
    assert torch.allclose(mu, x.mean(0))
    assert np.allclose(cov.numpy(), np.cov(x.numpy(), rowvar=False), rtol=1e-12, atol=1e-12)
    s, o = sums_from_mean_cov(mu, cov, 57)
    mu2, cov2 = mean_cov_from_sums(s, o, 57)
    assert torch.allclose(mu2, mu) and torch.allclose(cov2, cov)
    with pytest.raises(ValueError, match="at least 2"):
        mean_cov_from_sums(s, o, 1)


def test_mmd2_unbiased_matches_numpy_double_loop() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 8)), rng.normal(size=(30, 8)) * 1.3 + 0.2
    ours = mmd2_unbiased(torch.from_numpy(x), torch.from_numpy(y)).item()
    assert ours == pytest.approx(_numpy_poly_mmd2_unbiased(x, y), rel=1e-10, abs=1e-12)
    # the same through kernel_distance with the full sets: std 0
    mean, std = kernel_distance(torch.from_numpy(x), torch.from_numpy(y))
    assert mean.item() == pytest.approx(ours, rel=1e-12) and std.item() == 0.0


def test_kernel_distance_subsets_mean_std_and_seed() -> None:
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(60, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(50, 5, generator=gen, dtype=torch.float64) + 0.5
    mean, std = kernel_distance(x, y, subsets=6, subset_size=20, seed=7)
    # reference: the same subsets drawn independently, scored with the NumPy double loop
    g = torch.Generator().manual_seed(7)
    scores = []
    for _ in range(6):
        ir, i_f = torch.randperm(60, generator=g)[:20], torch.randperm(50, generator=g)[:20]
        scores.append(_numpy_poly_mmd2_unbiased(x[ir].numpy(), y[i_f].numpy()))
    assert mean.item() == pytest.approx(np.mean(scores), rel=1e-10)
    assert std.item() == pytest.approx(np.std(scores), rel=1e-8)
    assert std.item() > 0
    again = kernel_distance(x, y, subsets=6, subset_size=20, seed=7)
    assert torch.equal(again[0], mean) and torch.equal(again[1], std)
    assert kernel_distance(x, y, subsets=6, subset_size=20, seed=8)[0] != mean
    with pytest.raises(ValueError, match="subset_size"):
        kernel_distance(x, y, subsets=3)
    with pytest.raises(ValueError, match="subset_size"):
        kernel_distance(x, y, subsets=2, subset_size=51)
