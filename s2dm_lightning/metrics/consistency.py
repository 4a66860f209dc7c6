"""Temporal-consistency metrics of flow-conditioned videos, as torchmetrics ``Metric`` classes.

They measure what S2DM is about without any downloaded weights:

* :class:`FlowWarpingError`: does frame i look like frame 1 moved by the conditioning flow?
* :class:`FlowAdherence`: does the generated video move as the conditioning flow says (flow
  re-estimated with the data pipeline's estimator, end-point error in pixels)?
* :class:`BackgroundDrift`: do the pixels the flow calls static stay as in frame 1?

Each averages per-frame values (frames 2..F, see :mod:`.functional_consistency`) over frames and
videos. States are a float64 sum and a frame count, both ``dist_reduce_fx="sum"``: merging across
processes is exact and memory does not grow with the number of videos. A frame without a defined
value (no visible or no static pixel) is left out of the mean.
"""

from __future__ import annotations

from abc import abstractmethod

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torchmetrics import Metric

from s2dm_lightning.data.flow import FlowSettings, estimate_video_flows, flow_settings_for
from s2dm_lightning.metrics.functional_consistency import (
    background_drift,
    check_videos_and_flow,
    flow_adherence,
    flow_warping_error,
    videos_to_uint8,
)


class _FrameMeanMetric(Metric):
    """Base: the mean of per-frame values with summed states.

    Args:
        value_range: (lo, hi) of the video values (default [-1, 1], the model's output).
        kwargs: passed to :class:`torchmetrics.Metric` (``sync_on_compute``, ``process_group``, ...).
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, value_range: tuple[float, float] = (-1.0, 1.0), **kwargs) -> None:
        super().__init__(**kwargs)
        lo, hi = float(value_range[0]), float(value_range[1])
        if not hi > lo:
            raise ValueError(f"value_range must satisfy lo < hi, got {value_range}")
        self.value_range = (lo, hi)
        self.add_state("value_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("num_frames", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("num_videos", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    @abstractmethod
    def per_frame(self, videos: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(values, valid), both (B, F - 1)."""

    def update(self, videos: torch.Tensor, flow: torch.Tensor) -> None:
        """Add a batch of videos with their conditions.

        Args:
            videos: (B, F, 3, H, W) videos in ``value_range`` (generated, or real for a reference value).
            flow: (B, F, 3, h, w) the flow/occlusion conditions they were generated from.
        """
        check_videos_and_flow(videos, flow)
        values, valid = self.per_frame(videos, flow)
        values = values.detach().to(device=self.device, dtype=torch.float64)
        valid = valid.to(self.device)
        self.value_sum += values[valid].sum()
        self.num_frames += valid.sum()
        self.num_videos += videos.shape[0]

    def compute(self) -> torch.Tensor:
        """The mean over every frame with a defined value (float64 scalar); NaN with a warning if none."""
        if int(self.num_frames) == 0:
            rank_zero_warn(
                f"{type(self).__name__}: no frame with a defined value in {int(self.num_videos)} videos "
                "(call update() first, or no visible/static pixels); returning NaN"
            )
            return torch.tensor(float("nan"), dtype=torch.float64, device=self.device)
        return self.value_sum / self.num_frames


class FlowWarpingError(_FrameMeanMetric):
    """Flow-warping error: frame 1 warped with the conditioning flow of frame i vs generated frame i.

    Mean absolute RGB difference on a [0, 1] scale, weighted by the occlusion map (visible pixels
    only), averaged over frames 2..F and videos. Zero for a video that is exactly its warped first
    frame; lower is better.

    Args:
        value_range: (lo, hi) of the video values.
        kwargs: passed to :class:`torchmetrics.Metric`.
    """

    def per_frame(self, videos: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return flow_warping_error(videos, flow.to(videos.device), self.value_range)


class FlowAdherence(_FrameMeanMetric):
    """Flow adherence: end-point error (pixels of the flow map) of the generated video's flow.

    The flow of each generated video is estimated with the data pipeline's estimator
    (:func:`~s2dm_lightning.data.flow.estimate_flow_sequence` on uint8 frames, CPU/OpenCV) and
    compared with the conditioning flow, weighted by the conditioning occlusion map. Lower is better;
    the real clips give the estimator's own floor.

    Args:
        flow_settings: the estimator settings the conditions were made with (e.g.
            ``datamodule.flow_settings``); None = the defaults at the conditions' map size.
        weight_by_visibility: weight pixels by the conditioning occlusion map (else all equally).
        value_range: (lo, hi) of the video values.
        kwargs: passed to :class:`torchmetrics.Metric`.
    """

    def __init__(
        self,
        flow_settings: FlowSettings | None = None,
        weight_by_visibility: bool = True,
        value_range: tuple[float, float] = (-1.0, 1.0),
        **kwargs,
    ) -> None:
        super().__init__(value_range, **kwargs)
        if flow_settings is not None and not isinstance(flow_settings, FlowSettings):
            raise TypeError(f"flow_settings must be a FlowSettings, got {type(flow_settings).__name__}")
        self.flow_settings = flow_settings
        self.weight_by_visibility = weight_by_visibility

    def per_frame(self, videos: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        videos, flow = videos.detach().cpu(), flow.detach().cpu()
        settings = flow_settings_for(flow, self.flow_settings)

        def estimate_flows(clips: torch.Tensor) -> torch.Tensor:  # rounded to uint8 like frames read from disk
            return estimate_video_flows(videos_to_uint8(clips, self.value_range), settings)

        return flow_adherence(videos, flow, estimate_flows, self.weight_by_visibility)


class BackgroundDrift(_FrameMeanMetric):
    """Background drift: mean |frame i - frame 1| over the pixels the conditioning flow calls static.

    Static = displacement at most ``tolerance_px`` video pixels and occlusion at least
    ``visibility_threshold``. Mean absolute RGB difference on a [0, 1] scale, averaged over frames
    2..F (that have static pixels) and videos. Zero for a constant background; lower is better.

    Args:
        tolerance_px: largest displacement (pixels at the video's size) that counts as static.
        visibility_threshold: smallest occlusion value that counts as visible.
        value_range: (lo, hi) of the video values.
        kwargs: passed to :class:`torchmetrics.Metric`.
    """

    def __init__(
        self,
        tolerance_px: float = 0.5,
        visibility_threshold: float = 0.5,
        value_range: tuple[float, float] = (-1.0, 1.0),
        **kwargs,
    ) -> None:
        super().__init__(value_range, **kwargs)
        if tolerance_px < 0:
            raise ValueError(f"tolerance_px must be >= 0, got {tolerance_px}")
        if not 0.0 <= visibility_threshold <= 1.0:
            raise ValueError(f"visibility_threshold must be in [0, 1], got {visibility_threshold}")
        self.tolerance_px, self.visibility_threshold = float(tolerance_px), float(visibility_threshold)

    def per_frame(self, videos: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return background_drift(
            videos, flow.to(videos.device), self.tolerance_px, self.visibility_threshold, self.value_range
        )
