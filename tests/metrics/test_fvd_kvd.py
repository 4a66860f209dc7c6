"""FrechetVideoDistance / KernelVideoDistance: streaming, extractors, caching, reset, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from s2dm_lightning.metrics import (
    FrechetVideoDistance,
    KernelVideoDistance,
    frechet_distance_from_features,
    kernel_distance,
)

D = 12


def _features(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.randn(n, D, generator=gen, dtype=torch.float64)
        @ torch.randn(D, D, generator=gen, dtype=torch.float64)
        * 0.5
        + shift
    )


def _batches(x: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    assert sum(sizes) == len(x)
    return list(torch.split(x, sizes))


class _TinyVideoNet(nn.Module):
    """A small stand-in feature extractor: (B, T, H, W, 3) uint8 -> (B, D)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.proj = nn.Linear(3 * 4 * 6 * 6, D)

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        return self.proj(videos.float().flatten(1) / 255)


@pytest.mark.parametrize("sizes", [[1, 6, 33, 40], [80]])
def test_fvd_streaming_equals_one_batch(sizes: list[int]) -> None:
    real, fake = _features(80, 0), _features(80, 1, shift=0.3)
    metric = FrechetVideoDistance(feature_dim=D)
    for r, f in zip(_batches(real, sizes), _batches(fake, sizes[::-1]), strict=False):
        metric.update(r, real=True)
        metric.update_features(f, real=False)
    for f in _batches(fake, sizes[::-1])[len(sizes) :]:
        metric.update(f, real=False)
    expected = frechet_distance_from_features(real, fake)
    assert metric.compute().item() == pytest.approx(expected.item(), rel=1e-9)


def test_fvd_identical_sets_is_zero() -> None:
    x = _features(300, 2)
    metric = FrechetVideoDistance(feature_dim=D)
    metric.update(x, real=True)
    metric.update(x, real=False)
    assert abs(metric.compute().item()) < 1e-6


@pytest.mark.parametrize("sizes", [[2, 5, 23, 30], [60]])
def test_kvd_streaming_equals_one_batch(sizes: list[int]) -> None:
    real, fake = _features(60, 3), _features(60, 4, shift=0.2)
    metric = KernelVideoDistance()
    for r, f in zip(_batches(real, sizes), _batches(fake, sizes), strict=True):
        metric.update(r, real=True)
        metric.update_features(f, real=False)
    mean, std = metric.compute()
    assert mean.item() == pytest.approx(kernel_distance(real, fake)[0].item(), rel=1e-10)
    assert std.item() == 0.0


def test_kvd_subsets_give_seeded_mean_and_std() -> None:
    real, fake = _features(50, 5), _features(40, 6, shift=0.5)
    metric = KernelVideoDistance(subsets=8, subset_size=16, seed=3)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    mean, std = metric.compute()
    exp_mean, exp_std = kernel_distance(real, fake, subsets=8, subset_size=16, seed=3)
    assert torch.equal(mean, exp_mean) and torch.equal(std, exp_std) and std.item() > 0
    with pytest.raises(ValueError, match="subset_size"):
        KernelVideoDistance(subsets=4)


def test_custom_extractor_is_used_and_kept_out_of_state_dict() -> None:
    net = _TinyVideoNet()
    gen = torch.Generator().manual_seed(7)
    real = torch.randint(0, 256, (9, 4, 6, 6, 3), dtype=torch.uint8, generator=gen)
    fake = torch.randint(0, 200, (7, 4, 6, 6, 3), dtype=torch.uint8, generator=gen)
    fvd = FrechetVideoDistance(feature_extractor=net, feature_dim=D)
    kvd = KernelVideoDistance(feature_extractor=net)
    for metric in (fvd, kvd):
        metric.update(real[:4], real=True)
        metric.update(real[4:], real=True)
        metric.update(fake, real=False)
    with torch.no_grad():  # real features in one batch of 9, not 4 + 5: equal to float32 rounding, which
        fr, ff = net(real).double(), net(fake).double()  # moves FVD/KVD by 1.9e-7 (vs float64): rel 1e-6 holds
    assert fvd.compute().item() == pytest.approx(frechet_distance_from_features(fr, ff).item(), rel=1e-6)
    assert kvd.compute()[0].item() == pytest.approx(kernel_distance(fr, ff)[0].item(), rel=1e-6)
    assert not any(k.startswith("proj") or ".proj." in k for k in fvd.state_dict())
    assert fvd.feature_extractor is net


def test_fvd_real_statistics_cache_roundtrip(tmp_path: Path) -> None:
    real, fake = _features(70, 8), _features(50, 9, shift=0.4)
    full = FrechetVideoDistance(feature_dim=D)
    full.update(real, real=True)
    full.update(fake, real=False)
    path = tmp_path / "cache" / "real_stats.pt"
    full.save_real_statistics(path, metadata={"dataset": "synthetic", "frames": 16})

    cached = FrechetVideoDistance(feature_dim=D)
    assert cached.load_real_statistics(path) == {"dataset": "synthetic", "frames": 16}
    assert cached.real_statistics().num_samples == 70
    cached.update(fake, real=False)
    assert cached.compute().item() == pytest.approx(full.compute().item(), rel=1e-10)
    with pytest.raises(RuntimeError, match="cache"):
        cached.update(real, real=True)
    cached.clear_real_statistics()
    cached.update(real, real=True)  # accepted again
    with pytest.raises(ValueError, match="400-d|12-d"):
        FrechetVideoDistance(feature_dim=400).load_real_statistics(path)


def test_kvd_real_features_cache_roundtrip(tmp_path: Path) -> None:
    real, fake = _features(30, 10), _features(25, 11, shift=0.4)
    full = KernelVideoDistance()
    full.update(real, real=True)
    full.update(fake, real=False)
    full.save_real_features(tmp_path / "real_feats.pt")
    cached = KernelVideoDistance()
    cached.load_real_features(tmp_path / "real_feats.pt")
    cached.update(fake, real=False)
    assert torch.equal(cached.compute()[0], full.compute()[0])


@pytest.mark.parametrize("cls", [FrechetVideoDistance, KernelVideoDistance])
def test_reset_real_features_flag(cls: type) -> None:
    real, fake, fake2 = _features(40, 12), _features(40, 13, shift=0.3), _features(40, 14, shift=0.6)
    kwargs = {"feature_dim": D} if cls is FrechetVideoDistance else {}
    metric = cls(reset_real_features=False, **kwargs)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    metric.compute()
    metric.reset()
    metric.update(fake2, real=False)  # real side survives the reset
    fresh = cls(**kwargs)
    fresh.update(real, real=True)
    fresh.update(fake2, real=False)
    first = lambda v: v[0] if isinstance(v, tuple) else v  # noqa: E731
    assert first(metric.compute()).item() == pytest.approx(first(fresh.compute()).item(), rel=1e-10)
    cleared = cls(**kwargs)
    cleared.update(real, real=True)
    cleared.reset()
    cleared.update(fake, real=False)
    with pytest.raises(RuntimeError, match="real"):
        cleared.compute()


def test_clear_errors() -> None:
    fvd = FrechetVideoDistance(feature_dim=D)
    with pytest.raises(ValueError, match="12-d"):
        fvd.update(torch.zeros(3, 5), real=True)
    with pytest.raises(ValueError, match="5-D videos"):
        fvd.update(torch.zeros(3, 4, 5), real=True)
    fvd.update(torch.zeros(1, D), real=True)
    fvd.update(torch.zeros(5, D), real=False)
    with pytest.raises(RuntimeError, match="at least 2 real"):
        fvd.compute()


def test_default_i3d_without_weights_explains_where_to_put_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("S2DM_I3D_WEIGHTS", raising=False)
    videos = torch.zeros(1, 16, 8, 8, 3, dtype=torch.uint8)
    for metric in (FrechetVideoDistance(), KernelVideoDistance()):
        with pytest.raises(FileNotFoundError, match="S2DM_I3D_WEIGHTS"):
            metric.update(videos, real=True)


def test_calling_the_metric_only_updates() -> None:
    real, fake = _features(20, 15), _features(20, 16, shift=0.3)
    called, updated = FrechetVideoDistance(feature_dim=D), FrechetVideoDistance(feature_dim=D)
    assert called(real, real=True) is None  # no per-batch value (it would need both sides)
    called(fake, real=False)
    updated.update(real, real=True)
    updated.update(fake, real=False)
    assert torch.equal(called.compute(), updated.compute())
