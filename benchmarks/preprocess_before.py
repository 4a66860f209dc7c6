"""The flow preprocessing path as it was before issue #19 (commit 6e09ff8), kept ONLY as the
baseline of ``bench_preprocess.py``: full-size RGB decoding of every frame (``read_video``), then gray
and resize, then per pair a fresh pixel grid, float copies of both frames, the static check's
zero-motion error once per direction, and numpy sums over a last axis of 2.

Only the functions that changed are copied; ``_calc`` (the DIS/Farneback call), ``estimation_shape``
and ``read_video`` are still the package's, unchanged. Not used by the package.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from s2dm_lightning.data.flow import FlowSettings, PairFlows, _calc, estimation_shape
from s2dm_lightning.data.video_io import read_video
from s2dm_lightning.flow_format import identity_condition, identity_grid


def to_gray(frames: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    out = []
    for frame in frames:
        gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        if size is not None and gray.shape != tuple(size):
            shrink = size[0] * size[1] < gray.shape[0] * gray.shape[1]
            gray = cv2.resize(
                gray, (size[1], size[0]), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
            )
        out.append(gray)
    return np.stack(out)


def _pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return xs, ys


def _apply_static_prior(flow, first, second, settings: FlowSettings) -> np.ndarray:
    xs, ys = _pixel_grid(*first.shape)
    first_f, second_f = first.astype(np.float32), second.astype(np.float32)
    warped = cv2.remap(
        second_f, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    window = (settings.static_window, settings.static_window)
    error_flow = cv2.blur(np.abs(first_f - warped), window)
    error_zero = cv2.blur(np.abs(first_f - second_f), window)
    flow = flow.copy()
    flow[error_zero <= error_flow + settings.static_tolerance] = 0.0
    return flow


def estimate_raw_pair(reference_gray, frame_gray, settings: FlowSettings, initial=None) -> PairFlows:
    reference_gray = np.ascontiguousarray(reference_gray, dtype=np.uint8)
    frame_gray = np.ascontiguousarray(frame_gray, dtype=np.uint8)
    backward = _calc(frame_gray, reference_gray, settings, None if initial is None else initial.backward)
    forward = _calc(reference_gray, frame_gray, settings, None if initial is None else initial.forward)
    if settings.static_prior:
        backward = _apply_static_prior(backward, frame_gray, reference_gray, settings)
        forward = _apply_static_prior(forward, reference_gray, frame_gray, settings)
    return PairFlows(backward=backward, forward=forward)


def flows_to_condition(flows: PairFlows, settings: FlowSettings) -> tuple[torch.Tensor, torch.Tensor]:
    backward, forward = flows.backward, flows.forward
    height, width = backward.shape[:2]
    xs, ys = _pixel_grid(height, width)
    source_x = xs + backward[..., 0]
    source_y = ys + backward[..., 1]
    forward_at_source = cv2.remap(forward, source_x, source_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    round_trip = np.sum((backward + forward_at_source) ** 2, axis=-1)
    magnitudes = np.sum(backward**2, axis=-1) + np.sum(forward_at_source**2, axis=-1)
    consistent = round_trip < settings.fb_alpha * magnitudes + settings.fb_beta
    inside = (source_x >= -0.5) & (source_x <= width - 0.5) & (source_y >= -0.5) & (source_y <= height - 0.5)
    visible = (consistent & inside).astype(np.float32)
    displacement = np.stack(
        [backward[..., 0] * (2.0 / max(width - 1, 1)), backward[..., 1] * (2.0 / max(height - 1, 1))], axis=-1
    )
    size = settings.flow_size
    displacement = cv2.resize(displacement, (size, size), interpolation=cv2.INTER_AREA)
    visible = cv2.resize(visible, (size, size), interpolation=cv2.INTER_AREA)
    grid = identity_grid(size, size) + torch.from_numpy(np.ascontiguousarray(displacement.transpose(2, 0, 1)))
    occlusion = torch.from_numpy(np.clip(visible, 0.0, 1.0)).unsqueeze(0)
    return grid.float(), occlusion.float()


def estimate_flow_sequence(frames: np.ndarray, settings: FlowSettings) -> torch.Tensor:
    length, height, width = frames.shape[:3]
    gray = to_gray(frames, estimation_shape(height, width, settings))
    size = settings.flow_size
    out = torch.empty(length, 3, size, size, dtype=torch.float32)
    out[0] = identity_condition(size, size)
    previous = None
    for i in range(1, length):
        flows = estimate_raw_pair(gray[0], gray[i], settings, previous if settings.temporal_init else None)
        grid, occlusion = flows_to_condition(flows, settings)
        out[i, :2] = grid
        out[i, 2:] = occlusion
        previous = flows
    return out


def compute(path, settings: FlowSettings, crop=None) -> torch.Tensor:
    """What ``preprocess._compute`` did per video: read every frame full size, then estimate."""
    return estimate_flow_sequence(read_video(path, crop=crop), settings)
