"""Temporal consistency of generated videos against their flow conditions: the pure math.

Every function takes a batch of videos ``(B, F, 3, H, W)`` (values in ``value_range``, default
[-1, 1]) and their conditions ``(B, F, 3, h, w)`` in the format of :mod:`s2dm_lightning.flow_format`
(a ``grid_sample`` grid from frame i back to the reference frame 1, plus an occlusion map, 1 =
visible in the reference frame). Each returns per-frame values ``(B, F - 1)`` for frames 2..F (frame
1 is the reference) and a boolean ``(B, F - 1)`` saying which frames have a defined value (a frame
with no visible, or no static, pixel has none). The metric classes in :mod:`.consistency` average
the defined values over frames and videos.

Units: intensity differences are mean absolute differences of the RGB channels on a [0, 1] scale
(0.01 is about 2.5 of 255 grey levels); flow errors are in pixels of the flow map.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from s2dm_lightning.flow_format import FLOW_CHANNELS, grid_to_displacement, resize_condition, warp_reference

#: Weight below which a frame counts as having no visible pixels at all.
_MIN_WEIGHT = 1e-6


def check_videos_and_flow(videos: torch.Tensor, flow: torch.Tensor) -> None:
    """Raise ``ValueError`` unless videos are (B, F, 3, H, W) and flow (B, F, 3, h, w) with F >= 2.

    Args:
        videos: generated videos.
        flow: their flow/occlusion conditions.
    """
    if videos.ndim != 5 or videos.shape[2] != 3:
        raise ValueError(f"videos must have shape (B, F, 3, H, W), got {tuple(videos.shape)}")
    if flow.ndim != 5 or flow.shape[2] != FLOW_CHANNELS:
        raise ValueError(f"flow conditions must have shape (B, F, 3, h, w), got {tuple(flow.shape)}")
    if videos.shape[:2] != flow.shape[:2]:
        raise ValueError(
            f"videos {tuple(videos.shape)} and flow {tuple(flow.shape)} differ in (B, F) = (videos, frames)"
        )
    if videos.shape[1] < 2:
        raise ValueError(f"temporal consistency needs at least 2 frames, got {videos.shape[1]}")


def to_unit_range(videos: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """Map float videos from ``value_range`` to [0, 1] (float32, clamped).

    Args:
        videos: any float tensor.
        value_range: (lo, hi) of the input values.
    """
    lo, hi = float(value_range[0]), float(value_range[1])
    if not hi > lo:
        raise ValueError(f"value_range must satisfy lo < hi, got {value_range}")
    return ((videos.float() - lo) / (hi - lo)).clamp(0.0, 1.0)


def displacement_pixels(condition: torch.Tensor) -> torch.Tensor:
    """(..., 3, h, w) conditions -> (..., 2, h, w) displacement (dx, dy) in pixels of the map.

    align_corners=True: the grid span [-1, 1] covers ``size - 1`` pixel steps.
    """
    h, w = condition.shape[-2:]
    disp = grid_to_displacement(condition.float())[..., :2, :, :]
    scale = torch.tensor([max(w - 1, 1) / 2.0, max(h - 1, 1) / 2.0], device=disp.device, dtype=disp.dtype)
    return disp * scale.view(2, 1, 1)


def _weighted_frame_mean(values: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sum(w * v) / sum(w) over the last two dims of (B, F', h, w) tensors, and where sum(w) > 0."""
    total = weights.sum(dim=(-2, -1))
    valid = total > _MIN_WEIGHT
    mean = (weights * values).sum(dim=(-2, -1)) / total.clamp_min(_MIN_WEIGHT)
    return torch.where(valid, mean, torch.zeros_like(mean)), valid


def flow_warping_error(
    videos: torch.Tensor, flow: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame flow-warping error: frame 1 warped by the condition of frame i, against frame i.

    ``e_i = sum_p o_i(p) |warp(x^1, y^i)(p) - x^i(p)|_1 / (3 sum_p o_i(p))`` on [0, 1] intensities,
    with o_i the occlusion map (soft weights, 1 = visible in frame 1), resized with the grid to the
    video's size. A video that is exactly the warped first frame has zero error.

    Args:
        videos: (B, F, 3, H, W) generated videos in ``value_range``.
        flow: (B, F, 3, h, w) their conditions.
        value_range: (lo, hi) of the video values.

    Returns:
        ``(errors, valid)``, both (B, F - 1): frames 2..F; valid = the frame has visible pixels.
    """
    check_videos_and_flow(videos, flow)
    b, f, _, h, w = videos.shape
    x = to_unit_range(videos, value_range)
    cond = flow[:, 1:].flatten(0, 1).to(x.device, torch.float32)
    warped = warp_reference(x[:, 0], flow[:, 1:]).flatten(0, 1)
    diff = (warped - x[:, 1:].flatten(0, 1)).abs().mean(dim=1)
    weights = resize_condition(cond, (h, w), mode="bilinear")[:, 2].clamp(0.0, 1.0)
    errors, valid = _weighted_frame_mean(diff, weights)
    return errors.view(b, f - 1), valid.view(b, f - 1)


def videos_to_uint8(videos: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """(B, F, 3, H, W) float videos -> uint8 numpy (B, F, H, W, 3), rounded to the 256 levels of a file."""
    levels = (to_unit_range(videos, value_range) * 255.0).round().to(torch.uint8)
    return levels.permute(0, 1, 3, 4, 2).cpu().numpy()


def flow_endpoint_error(
    estimated: torch.Tensor, target: torch.Tensor, weight_by_visibility: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame end-point error (pixels of the flow map) of ``estimated`` against ``target`` conditions.

    ``EPE_i = sum_p o_i(p) ||d_est(p) - d_target(p)||_2 / sum_p o_i(p)``, with d the displacement
    from the identity in pixels and o_i the target's occlusion map (where the target flow is defined);
    with ``weight_by_visibility=False`` every pixel counts once.

    Args:
        estimated: (B, F, 3, s, s) estimated conditions.
        target: (B, F, 3, s, s) conditioning flows.
        weight_by_visibility: weight pixels by the target's occlusion map.

    Returns:
        ``(epe, valid)``, both (B, F - 1) for frames 2..F.
    """
    if estimated.shape != target.shape or target.ndim != 5 or target.shape[2] != FLOW_CHANNELS:
        raise ValueError(
            f"estimated {tuple(estimated.shape)} and target {tuple(target.shape)} flows must both be (B, F, 3, s, s)"
        )
    if target.shape[1] < 2:
        raise ValueError(f"flow adherence needs at least 2 frames, got {target.shape[1]}")
    est, tgt = estimated[:, 1:].float(), target[:, 1:].to(estimated.device).float()
    epe = (displacement_pixels(est) - displacement_pixels(tgt)).norm(dim=2)
    weights = tgt[:, :, 2].clamp(0.0, 1.0) if weight_by_visibility else torch.ones_like(epe)
    return _weighted_frame_mean(epe, weights)


def flow_adherence(
    videos: torch.Tensor,
    flow: torch.Tensor,
    estimate_flows: Callable[[torch.Tensor], torch.Tensor],
    weight_by_visibility: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame EPE between the flow estimated from the generated videos and their conditioning flow.

    Args:
        videos: (B, F, 3, H, W) generated videos.
        flow: (B, F, 3, s, s) conditioning flows.
        estimate_flows: videos -> their (B, F, 3, s, s) conditions, made as the conditions were (the
            metric class passes the data pipeline's estimator, :func:`~s2dm_lightning.data.flow.estimate_video_flows`).
        weight_by_visibility: weight pixels by the conditioning occlusion map.

    Returns:
        ``(epe, valid)``, both (B, F - 1), EPE in pixels of the s x s flow map.
    """
    check_videos_and_flow(videos, flow)
    estimated = estimate_flows(videos)
    return flow_endpoint_error(estimated.to(flow.device), flow, weight_by_visibility)


def static_mask(
    flow: torch.Tensor, size: tuple[int, int], tolerance_px: float = 0.5, visibility_threshold: float = 0.5
) -> torch.Tensor:
    """Where the conditions say nothing moves: (N, 3, h, w) -> bool (N, *size).

    A pixel is static when its displacement, resized to ``size``, is at most ``tolerance_px``
    pixels of that size and its occlusion value is at least ``visibility_threshold``.
    """
    cond = resize_condition(flow.float(), size, mode="bilinear")
    disp = displacement_pixels(cond)
    return (disp.norm(dim=1) <= tolerance_px) & (cond[:, 2] >= visibility_threshold)


def background_drift(
    videos: torch.Tensor,
    flow: torch.Tensor,
    tolerance_px: float = 0.5,
    visibility_threshold: float = 0.5,
    value_range: tuple[float, float] = (-1.0, 1.0),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame change of the static pixels: mean |x^i - x^1| where the condition of frame i is static.

    Args:
        videos: (B, F, 3, H, W) generated videos in ``value_range``.
        flow: (B, F, 3, h, w) their conditions.
        tolerance_px: largest displacement (video pixels) that still counts as static.
        visibility_threshold: smallest occlusion value that counts as visible.
        value_range: (lo, hi) of the video values.

    Returns:
        ``(drift, valid)``, both (B, F - 1); valid = the frame has static pixels.
    """
    check_videos_and_flow(videos, flow)
    b, f, _, h, w = videos.shape
    x = to_unit_range(videos, value_range)
    diff = (x[:, 1:] - x[:, :1]).abs().mean(dim=2).flatten(0, 1)
    mask = static_mask(flow[:, 1:].flatten(0, 1).to(x.device), (h, w), tolerance_px, visibility_threshold)
    drift, valid = _weighted_frame_mean(diff, mask.float())
    return drift.view(b, f - 1), valid.view(b, f - 1)

