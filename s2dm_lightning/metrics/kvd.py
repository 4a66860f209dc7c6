"""Kernel Video Distance (unbiased polynomial-kernel MMD^2 on video features) as a torchmetrics ``Metric``."""

from __future__ import annotations

import os

import torch
from torch import nn
from torchmetrics.utilities import dim_zero_cat

from s2dm_lightning.io import atomic_torch_save
from s2dm_lightning.metrics.base import VideoFeatureMetric
from s2dm_lightning.metrics.functional import kernel_distance
from s2dm_lightning.safe_load import load_torch_data


class KernelVideoDistance(VideoFeatureMetric):
    """KVD: unbiased MMD^2 between real and generated features with ``k(x, y) = (gamma x.y + coef0)^degree``.

    The unbiased estimator needs every feature, so the states are lists concatenated across
    processes (``dist_reduce_fx="cat"``). ``compute()`` returns ``(mean, std)`` over ``subsets``
    random subsets of ``subset_size`` samples per side (seeded with ``seed``; std with ddof=0 as
    torchmetrics' KID); with ``subset_size=None`` the full sets are used once and std is 0.
    Real features can be cached with :meth:`save_real_features` / :meth:`load_real_features`.

    Args:
        feature_extractor: module mapping inputs to (B, d); None for the FVD I3D (loaded on first use)
            or for inputs that already are (N, d) features.
        subsets: number of random subsets.
        subset_size: samples per side in each subset; None for the full sets (then ``subsets`` = 1).
        degree: kernel degree (3).
        gamma: kernel scale; None means 1 / d.
        coef0: kernel constant (1).
        seed: seed of the subset sampling.
        i3d_weights: see :class:`~s2dm_lightning.metrics.base.VideoFeatureMetric`.
        value_range: see :class:`~s2dm_lightning.metrics.base.VideoFeatureMetric`.
        layout: see :class:`~s2dm_lightning.metrics.base.VideoFeatureMetric`.
        resize_convention: see :class:`~s2dm_lightning.metrics.base.VideoFeatureMetric`.
        allow_torchscript: see :class:`~s2dm_lightning.metrics.base.VideoFeatureMetric`.
        reset_real_features: whether ``reset()`` also clears the real features.
        kwargs: passed to :class:`torchmetrics.Metric`.
    """

    _real_state_names = ("real_features",)

    def __init__(
        self,
        feature_extractor: nn.Module | None = None,
        subsets: int = 1,
        subset_size: int | None = None,
        degree: int = 3,
        gamma: float | None = None,
        coef0: float = 1.0,
        seed: int = 0,
        i3d_weights: str | os.PathLike | None = None,
        value_range: tuple[float, float] | None = None,
        layout: str = "BTHWC",
        resize_convention: str = "tf1",
        reset_real_features: bool = True,
        allow_torchscript: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(
            feature_extractor,
            i3d_weights,
            value_range,
            layout,
            resize_convention,
            reset_real_features,
            allow_torchscript,
            **kwargs,
        )
        if subsets < 1:
            raise ValueError(f"subsets must be >= 1, got {subsets}")
        if subset_size is None and subsets != 1:
            raise ValueError("subsets > 1 needs a subset_size")
        if subset_size is not None and subset_size < 2:
            raise ValueError(f"subset_size must be >= 2, got {subset_size}")
        self.subsets, self.subset_size, self.seed = subsets, subset_size, seed
        self.degree, self.gamma, self.coef0 = degree, gamma, coef0
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")
        self._cached_real: torch.Tensor | None = None

    def _add(self, feats: torch.Tensor, real: bool) -> None:
        if real and self._cached_real is not None:
            raise RuntimeError(
                "real features were set from a cache; call clear_real_features() before adding real videos"
            )
        (self.real_features if real else self.fake_features).append(feats)

    def _side(self, side: str) -> torch.Tensor:
        if side == "real" and self._cached_real is not None:
            return self._cached_real.to(self.device)
        items = getattr(self, f"{side}_features")
        if isinstance(items, list) and not items:
            raise RuntimeError(f"KVD has no {side} features; call update(..., real={side == 'real'}) first")
        return dim_zero_cat(items)

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(mean, std)`` of the unbiased MMD^2 over the subsets, float64 scalars."""
        real, fake = self._side("real"), self._side("fake")
        return kernel_distance(
            real, fake, self.subsets, self.subset_size, self.degree, self.gamma, self.coef0, self.seed
        )

    def real_features_tensor(self) -> torch.Tensor:
        """All real features (the cache if set, else the states gathered across processes), (N, d)."""
        if self._cached_real is not None:
            return self._cached_real
        with self.sync_context(dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync):
            return self._side("real").clone()

    def set_real_features(self, features: torch.Tensor) -> None:
        """Use cached (N, d) real features instead of real updates (held outside the synced states)."""
        if features.ndim != 2 or features.shape[0] < 2:
            raise ValueError(f"expected (N >= 2, d) real features, got {tuple(features.shape)}")
        if len(self.real_features) > 0:
            raise RuntimeError("real updates were already made; reset() before setting cached real features")
        self._cached_real = features.detach().to(self.device, torch.float64).clone()
        self._computed = None

    def clear_real_features(self) -> None:
        """Forget cached real features (real updates are accepted again)."""
        self._cached_real = None
        self._computed = None

    def save_real_features(self, path: str | os.PathLike, metadata: dict | None = None) -> None:
        """Save the real features to ``path`` (with plain-value ``metadata``), atomically."""
        atomic_torch_save(path, {"features": self.real_features_tensor().cpu(), "metadata": dict(metadata or {})})

    def load_real_features(self, path: str | os.PathLike) -> dict:
        """Load features written by :meth:`save_real_features` as the real side; returns the metadata."""
        payload = load_torch_data(path, "real-features file")
        if not isinstance(payload, dict) or not isinstance(payload.get("features"), torch.Tensor):
            raise ValueError(f"real-features file '{path}' holds no 'features' tensor (not written by save_real_features)")
        self.set_real_features(payload["features"])
        return dict(payload.get("metadata", {}))
