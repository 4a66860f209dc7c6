"""Fréchet Video Distance as a torchmetrics ``Metric`` with constant-memory, exactly mergeable states."""

from __future__ import annotations

import os
from typing import NamedTuple

import torch
from torch import nn

from s2dm_lightning.io import atomic_torch_save
from s2dm_lightning.metrics.base import VideoFeatureMetric
from s2dm_lightning.metrics.functional import frechet_distance, mean_cov_from_sums
from s2dm_lightning.metrics.i3d import I3D_NUM_CLASSES
from s2dm_lightning.safe_load import load_torch_data


class FeatureStatistics(NamedTuple):
    """Gaussian statistics of a feature set: mean (d,), unbiased covariance (d, d), sample count."""

    mean: torch.Tensor
    cov: torch.Tensor
    num_samples: int


class FrechetVideoDistance(VideoFeatureMetric):
    """FVD: Fréchet distance between Gaussians fitted to real and generated video features.

    States (all float64 except the counts, ``dist_reduce_fx="sum"``): per side the feature sum (d,),
    the sum of outer products x x^T (d, d) and the sample count. Summing them across processes is
    exact, and memory does not grow with the number of videos. ``compute()`` turns the sums into
    means and unbiased (n - 1) covariances and evaluates
    ``||mu_r - mu_g||^2 + Tr(S_r + S_g) - 2 Tr((S_r S_g)^{1/2})`` in float64, the trace term by
    symmetric eigendecompositions (see :func:`~s2dm_lightning.metrics.functional.trace_sqrt_product`).

    Real statistics can be cached: :meth:`save_real_statistics` / :meth:`load_real_statistics` (or
    :meth:`set_real_statistics`). Cached statistics are held outside the synced states (every rank can
    load the same file without it being counted once per rank) and replace the real side; real
    updates are then refused until :meth:`clear_real_statistics`.

    Args:
        feature_extractor: module mapping inputs to (B, feature_dim); None for the FVD I3D (loaded on
            first use) or for inputs that already are (N, feature_dim) features.
        feature_dim: width of the features (400 for I3D logits).
        i3d_weights: see :class:`~s2dm_lightning.metrics.base.VideoFeatureMetric`.
        value_range: see :class:`~s2dm_lightning.metrics.base.VideoFeatureMetric`.
        layout: see :class:`~s2dm_lightning.metrics.base.VideoFeatureMetric`.
        resize_convention: see :class:`~s2dm_lightning.metrics.base.VideoFeatureMetric`.
        allow_torchscript: see :class:`~s2dm_lightning.metrics.base.VideoFeatureMetric`.
        reset_real_features: whether ``reset()`` also clears the real-side states.
        kwargs: passed to :class:`torchmetrics.Metric`.
    """

    _real_state_names = ("real_features_sum", "real_features_outer_sum", "real_features_num_samples")

    def __init__(
        self,
        feature_extractor: nn.Module | None = None,
        feature_dim: int = I3D_NUM_CLASSES,
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
        if feature_dim < 1:
            raise ValueError(f"feature_dim must be positive, got {feature_dim}")
        self.feature_dim = feature_dim
        f64 = torch.float64
        for side in ("real", "fake"):
            self.add_state(f"{side}_features_sum", torch.zeros(feature_dim, dtype=f64), dist_reduce_fx="sum")
            self.add_state(
                f"{side}_features_outer_sum",
                torch.zeros(feature_dim, feature_dim, dtype=f64),
                dist_reduce_fx="sum",
            )
            self.add_state(
                f"{side}_features_num_samples", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum"
            )
        self._cached_real: FeatureStatistics | None = None

    # ------------------------------------------------------------------ updates
    def _add(self, feats: torch.Tensor, real: bool) -> None:
        if feats.shape[1] != self.feature_dim:
            raise ValueError(f"expected {self.feature_dim}-d features, got {tuple(feats.shape)}")
        if real and self._cached_real is not None:
            raise RuntimeError(
                "real statistics were set from a cache; real updates would be ignored. "
                "Call clear_real_statistics() first to recompute them from videos."
            )
        side = "real" if real else "fake"
        # streaming sums: s += sum_i x_i,  O += sum_i x_i x_i^T,  n += N
        setattr(self, f"{side}_features_sum", getattr(self, f"{side}_features_sum") + feats.sum(0))
        setattr(
            self, f"{side}_features_outer_sum", getattr(self, f"{side}_features_outer_sum") + feats.T @ feats
        )
        setattr(
            self,
            f"{side}_features_num_samples",
            getattr(self, f"{side}_features_num_samples") + feats.shape[0],
        )

    # ------------------------------------------------------------------ compute
    def _side_statistics(self, side: str) -> FeatureStatistics:
        if side == "real" and self._cached_real is not None:
            return self._cached_real
        n = int(getattr(self, f"{side}_features_num_samples"))
        if n < 2:
            raise RuntimeError(f"FVD needs at least 2 {side} samples (unbiased covariance), got {n}")
        mean, cov = mean_cov_from_sums(
            getattr(self, f"{side}_features_sum"), getattr(self, f"{side}_features_outer_sum"), n
        )
        return FeatureStatistics(mean, cov, n)

    def compute(self) -> torch.Tensor:
        """Return the FVD as a float64 scalar tensor (states are synced across processes first)."""
        real, fake = self._side_statistics("real"), self._side_statistics("fake")
        mu_r, cov_r = real.mean.to(self.device), real.cov.to(self.device)
        return frechet_distance(mu_r, cov_r, fake.mean, fake.cov)

    # ------------------------------------------------------------------ real-statistics cache
    def real_statistics(self) -> FeatureStatistics:
        """Mean, covariance and count of the real side (the cache if set, else the states synced
        across processes), e.g. to save them with :meth:`save_real_statistics`."""
        if self._cached_real is not None:
            return self._cached_real
        with self.sync_context(dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync):
            stats = self._side_statistics("real")
        return FeatureStatistics(stats.mean.clone(), stats.cov.clone(), stats.num_samples)

    def set_real_statistics(self, mean: torch.Tensor, cov: torch.Tensor, num_samples: int) -> None:
        """Use cached real statistics instead of real updates.

        Args:
            mean: (feature_dim,) mean of the real features.
            cov: (feature_dim, feature_dim) unbiased covariance of the real features.
            num_samples: number of real videos the statistics come from (at least 2).
        """
        d = self.feature_dim
        if tuple(mean.shape) != (d,) or tuple(cov.shape) != (d, d):
            raise ValueError(
                f"expected mean ({d},) and cov ({d}, {d}), got {tuple(mean.shape)} and {tuple(cov.shape)}"
            )
        if int(num_samples) < 2:
            raise ValueError(f"num_samples must be >= 2, got {num_samples}")
        if int(self.real_features_num_samples) > 0:
            raise RuntimeError(
                "real updates were already made; reset() before setting cached real statistics"
            )
        f64 = torch.float64
        self._cached_real = FeatureStatistics(
            mean.detach().to(self.device, f64).clone(),
            cov.detach().to(self.device, f64).clone(),
            int(num_samples),
        )
        self._computed = None

    def clear_real_statistics(self) -> None:
        """Forget cached real statistics (real updates are accepted again)."""
        self._cached_real = None
        self._computed = None

    def save_real_statistics(self, path: str | os.PathLike, metadata: dict | None = None) -> None:
        """Save the real statistics to ``path`` (``torch.save`` of a dict of tensors and plain values, atomically).

        Args:
            path: destination file.
            metadata: plain values to store alongside (e.g. dataset, split, frames, resolution) so a
                stale cache can be recognised.
        """
        stats = self.real_statistics()
        payload = {
            "mean": stats.mean.cpu(),
            "cov": stats.cov.cpu(),
            "num_samples": stats.num_samples,
            "feature_dim": self.feature_dim,
            "metadata": dict(metadata or {}),
        }
        atomic_torch_save(path, payload)

    def load_real_statistics(self, path: str | os.PathLike) -> dict:
        """Load statistics written by :meth:`save_real_statistics` and use them as the real side.

        Args:
            path: file written by :meth:`save_real_statistics`.

        Returns:
            The stored metadata dict.
        """
        payload = load_torch_data(path, "real-statistics file")
        if not isinstance(payload, dict) or int(payload.get("feature_dim", -1)) != self.feature_dim:
            raise ValueError(
                f"{path} holds {payload.get('feature_dim')}-d statistics, metric has {self.feature_dim}"
            )
        self.set_real_statistics(payload["mean"], payload["cov"], int(payload["num_samples"]))
        return dict(payload.get("metadata", {}))
