"""Optical flow and occlusion from the reference frame (video frame 0) to every frame.

Paper Sec. 3.3: "we calculate the backward flow f^i between the first frame I^1 and the
other frames I^i". For a pixel p of frame i the backward flow f(p) satisfies
``frame_i(p) ~= reference(p + f(p))``; in OpenCV terms ``calc(frame_i, reference)``.
It is stored in the format of :mod:`s2dm_lightning.flow_format`: the grid_sample grid
``normalise(p + f(p))`` (align_corners=True) plus an occlusion map from the
forward-backward consistency check of Sundaram et al. (ECCV 2010), 1 = visible in the
reference frame. Pixels whose source ``p + f(p)`` lies outside the reference frame are
marked occluded too: their content is not in the reference.

Two additions to plain DIS, both switchable in :class:`FlowSettings` and measured on the
synthetic data (16 videos, 32 px, error against the true motion, in px):

- ``temporal_init``: the estimate for frame i starts from frame i-1's flows. DIS alone
  cannot reach a 10 px motion of an 8 px shape (shape error 2.7 px, i.e. it sees almost
  nothing); started from the previous frame it stays within 0.1-0.3 px.
- ``static_prior``: zero flow wherever zero motion fits a small window as well as the
  estimate. Without it motion leaks into the flat background around a moving object
  (background error 0.9 px vs 0.3 px with it).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np
import torch

from s2dm_lightning.data.geometry import DEFAULT_FRAME_GEOMETRY, check_geometry
from s2dm_lightning.data.video_io import estimation_gray, estimation_plan
from s2dm_lightning.flow_format import identity_condition, identity_grid

DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
ESTIMATORS = ("opencv-dis", "opencv-farneback")


@dataclass(frozen=True)
class FlowSettings:
    """How flows are estimated and stored; ``to_dict()`` is the flow cache's identity.

    Attributes:
        estimator: ``"opencv-dis"`` (DIS, Kroeger et al. 2016) or ``"opencv-farneback"``.
        dis_preset: DIS speed/quality preset: ``"ultrafast"``, ``"fast"`` or ``"medium"``.
        flow_size: stored resolution (flow_size x flow_size) = the diffusion resolution
            (32 for the synthetic pixel-space default, 16 for 128-px latent models).
        estimation_size: frames are resized to this square size before estimation;
            None = native size, scaled down so that the longer side is at most
            ``max_estimation_size`` and up so that the shorter side is at least
            ``min_estimation_size`` (DIS needs a few patches per object to work).
        max_estimation_size: cap on the longer side when ``estimation_size`` is None.
        min_estimation_size: floor on the shorter side when ``estimation_size`` is None.
        temporal_init: start the estimate for frame i from the flows of frame i - 1, so
            that motions much larger than a DIS patch are reached in small steps (DIS
            alone, frame 0 straight to frame 31, misses them on the synthetic data).
        static_prior: set the flow to zero where zero motion explains a small window
            (``static_window`` px at estimation size) at least as well as the estimate
            (mean abs error within ``static_tolerance`` grey levels): textureless static
            background otherwise picks up motion that leaks from moving objects.
        static_window: window side of the static check, pixels at estimation size.
        static_tolerance: slack of the static check, grey levels.
        fb_alpha: forward-backward check, relative term (Sundaram et al.: 0.01).
        fb_beta: forward-backward check, absolute term in pixels^2 (Sundaram et al.: 0.5).
        frame_geometry: how a frame of another aspect becomes the square the flows are stored at
            (:mod:`s2dm_lightning.data.geometry`): ``crop`` estimates on its centred square, ``pad``
            on the whole frame centred on black bars, ``squash`` on the whole frame, the flows then
            squeezed to the square. Part of the cache's identity, like every setting here.
        version: bump when the algorithm changes, so that old caches are rebuilt.
    """

    estimator: str = "opencv-dis"
    dis_preset: str = "medium"
    flow_size: int = 32
    estimation_size: int | None = None
    max_estimation_size: int = 256
    min_estimation_size: int = 64
    temporal_init: bool = True
    static_prior: bool = True
    static_window: int = 5
    static_tolerance: float = 1.0
    fb_alpha: float = 0.01
    fb_beta: float = 0.5
    frame_geometry: str = DEFAULT_FRAME_GEOMETRY
    version: int = 3  # 3: JPEG frames decoded to gray at reduced scale; 2: a fresh DIS object per pair

    def __post_init__(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"unknown flow estimator {self.estimator!r}; choose one of {ESTIMATORS}")
        if self.dis_preset not in DIS_PRESETS:
            raise ValueError(f"unknown dis_preset {self.dis_preset!r}; choose one of {tuple(DIS_PRESETS)}")
        if self.flow_size < 2:
            raise ValueError(f"flow_size must be at least 2, got {self.flow_size}")
        check_geometry(self.frame_geometry, "frame_geometry")
        if self.estimation_size is not None and self.estimation_size < 8:
            raise ValueError(f"estimation_size must be at least 8 or None, got {self.estimation_size}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable form, written to the flow cache's meta.json."""
        return asdict(self)


def _dis(preset: str):
    # A new DIS object for every call: OpenCV 5's DIS keeps state between calls that pass an
    # initial flow (so a reused object made a video's flow depend on the videos estimated
    # before it), and a reused object segfaults on smaller images. Creating one costs microseconds.
    return cv2.DISOpticalFlow_create(DIS_PRESETS[preset])


def _calc(
    first: np.ndarray, second: np.ndarray, settings: FlowSettings, initial: np.ndarray | None
) -> np.ndarray:
    """Flow u with first(p) ~= second(p + u(p)), shape (H, W, 2) float32 in pixels."""
    # Both estimators refine a flow passed in (they write into it, hence the copy).
    flow = None if initial is None else np.array(initial, dtype=np.float32, copy=True)
    if settings.estimator == "opencv-dis":
        return _dis(settings.dis_preset).calc(first, second, flow)
    flags = 0 if flow is None else cv2.OPTFLOW_USE_INITIAL_FLOW
    return cv2.calcOpticalFlowFarneback(first, second, flow, 0.5, 4, 15, 3, 5, 1.2, flags)


def estimation_shape(height: int, width: int, settings: FlowSettings) -> tuple[int, int]:
    """(height, width) at which flow is estimated for frames of the given size."""
    if settings.estimation_size is not None:
        return settings.estimation_size, settings.estimation_size
    long_side, short_side = max(height, width), min(height, width)
    if long_side > settings.max_estimation_size:
        scale = settings.max_estimation_size / long_side
    elif short_side < settings.min_estimation_size:
        scale = min(settings.min_estimation_size / short_side, settings.max_estimation_size / long_side)
    else:
        scale = 1.0
    return max(8, round(height * scale)), max(8, round(width * scale))


@dataclass
class PairFlows:
    """Raw flows of one (reference, frame) pair, (H, W, 2) float32 in pixels at estimation size.

    ``backward``: frame(p) ~= reference(p + backward(p)); ``forward``: reference(q) ~= frame(q + forward(q)).
    """

    backward: np.ndarray
    forward: np.ndarray


def _pixel_grid(height: int, width: int) -> np.ndarray:
    """(H, W, 2) float32 pixel coordinates (x, y): ``grid + flow`` is a map for ``cv2.remap``."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.ascontiguousarray(np.stack([xs, ys], axis=-1))


@dataclass
class Reference:
    """The reference frame (video frame 0), prepared once for all the pairs of a video."""

    gray: np.ndarray
    gray_float: np.ndarray
    pixels: np.ndarray

    @classmethod
    def of(cls, gray: np.ndarray) -> Reference:
        """Prepare a uint8 gray (H, W) image as the reference."""
        if gray.ndim != 2:
            raise ValueError(f"expected a gray image (H, W), got shape {gray.shape}")
        gray = np.ascontiguousarray(gray, dtype=np.uint8)
        return cls(gray, gray.astype(np.float32), _pixel_grid(*gray.shape))


def _apply_static_prior(
    flow: np.ndarray, first: np.ndarray, second: np.ndarray, error_zero: np.ndarray, pixels: np.ndarray,
    settings: FlowSettings,
) -> np.ndarray:
    """Zero ``flow`` (first(p) ~= second(p + flow(p))) where zero motion fits as well.

    ``first``/``second`` are float32 images; ``error_zero`` = blurred |first - second|, the same
    for both directions of a pair, so it is computed once.
    """
    warped = cv2.remap(second, pixels + flow, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    error_flow = cv2.blur(cv2.absdiff(first, warped), (settings.static_window, settings.static_window))
    flow = flow.copy()
    flow[error_zero <= error_flow + settings.static_tolerance] = 0.0
    return flow


def _raw_pair(
    reference: Reference, frame_gray: np.ndarray, settings: FlowSettings, initial: PairFlows | None
) -> PairFlows:
    if reference.gray.shape != frame_gray.shape or frame_gray.ndim != 2:
        raise ValueError(
            f"expected two gray images of equal shape, got {reference.gray.shape} and {frame_gray.shape}"
        )
    frame_gray = np.ascontiguousarray(frame_gray, dtype=np.uint8)
    backward = _calc(frame_gray, reference.gray, settings, None if initial is None else initial.backward)
    forward = _calc(reference.gray, frame_gray, settings, None if initial is None else initial.forward)
    if settings.static_prior:
        frame_float = frame_gray.astype(np.float32)
        window = (settings.static_window, settings.static_window)
        error_zero = cv2.blur(cv2.absdiff(frame_float, reference.gray_float), window)
        backward = _apply_static_prior(
            backward, frame_float, reference.gray_float, error_zero, reference.pixels, settings
        )
        forward = _apply_static_prior(
            forward, reference.gray_float, frame_float, error_zero, reference.pixels, settings
        )
    return PairFlows(backward=backward, forward=forward)


def estimate_raw_pair(
    reference_gray: np.ndarray,
    frame_gray: np.ndarray,
    settings: FlowSettings,
    initial: PairFlows | None = None,
) -> PairFlows:
    """Backward and forward flow between two uint8 gray images, optionally starting from ``initial``."""
    if reference_gray.shape != frame_gray.shape or reference_gray.ndim != 2:
        raise ValueError(
            f"expected two gray images of equal shape, got {reference_gray.shape} and {frame_gray.shape}"
        )
    return _raw_pair(Reference.of(reference_gray), frame_gray, settings, initial)


def flows_to_condition(
    flows: PairFlows, settings: FlowSettings, pixels: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Grid (2, s, s) and soft occlusion (1, s, s) at s = settings.flow_size from raw pair flows.

    ``pixels``: the pixel grid of the flows' size (``Reference.pixels``), made here if None.
    """
    backward, forward = flows.backward, flows.forward
    height, width = backward.shape[:2]
    source = (_pixel_grid(height, width) if pixels is None else pixels) + backward
    # Sundaram et al.: g evaluated where each pixel comes from, g(p + f(p)), should cancel f(p).
    forward_at_source = cv2.remap(forward, source, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # Channels as contiguous planes: numpy sums over a last axis of 2 are ~10x slower.
    back_x, back_y = cv2.split(backward)
    fwd_x, fwd_y = cv2.split(forward_at_source)
    source_x, source_y = cv2.split(source)
    round_trip = (back_x + fwd_x) ** 2 + (back_y + fwd_y) ** 2
    magnitudes = (back_x**2 + back_y**2) + (fwd_x**2 + fwd_y**2)
    consistent = round_trip < settings.fb_alpha * magnitudes + settings.fb_beta
    inside = (source_x >= -0.5) & (source_x <= width - 0.5) & (source_y >= -0.5) & (source_y <= height - 0.5)
    visible = (consistent & inside).astype(np.float32)

    # Displacement in grid units (align_corners=True: width - 1 pixel steps span 2).
    displacement = cv2.merge([back_x * (2.0 / max(width - 1, 1)), back_y * (2.0 / max(height - 1, 1))])
    size = settings.flow_size
    # Area-resize the displacement, not the absolute grid: the identity grid of the
    # stored resolution is added afterwards, so zero motion stays exactly the identity.
    displacement = cv2.resize(displacement, (size, size), interpolation=cv2.INTER_AREA)
    visible = cv2.resize(visible, (size, size), interpolation=cv2.INTER_AREA)
    grid = identity_grid(size, size) + torch.from_numpy(np.ascontiguousarray(displacement.transpose(2, 0, 1)))
    occlusion = torch.from_numpy(np.clip(visible, 0.0, 1.0)).unsqueeze(0)
    return grid.float(), occlusion.float()


def estimate_pair(
    reference_gray: np.ndarray,
    frame_gray: np.ndarray,
    settings: FlowSettings,
    initial: PairFlows | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Grid (2, s, s) and occlusion (1, s, s), s = settings.flow_size, from two uint8 gray images.

    The grid maps each pixel of ``frame_gray`` to its source in ``reference_gray``
    (``warp(reference, grid) ~= frame``); occlusion is soft in [0, 1] after resizing.
    """
    return flows_to_condition(estimate_raw_pair(reference_gray, frame_gray, settings, initial), settings)


def estimate_gray_sequence(gray: np.ndarray, settings: FlowSettings) -> torch.Tensor:
    """Conditions (L, 3, s, s) from uint8 gray frames (L, h, w) already at estimation size.

    Frame 0 is prepared once (:class:`Reference`) for all pairs; its condition is exactly the identity.
    """
    if gray.ndim != 3 or gray.dtype != np.uint8:
        raise ValueError(f"expected uint8 gray frames (L, H, W), got {gray.dtype} {tuple(gray.shape)}")
    size = settings.flow_size
    out = torch.empty(len(gray), 3, size, size, dtype=torch.float32)
    out[0] = identity_condition(size, size)
    reference = Reference.of(gray[0])
    previous: PairFlows | None = None
    for i in range(1, len(gray)):
        flows = _raw_pair(reference, gray[i], settings, previous if settings.temporal_init else None)
        grid, occlusion = flows_to_condition(flows, settings, reference.pixels)
        out[i, :2] = grid
        out[i, 2:] = occlusion
        previous = flows
    return out


def estimation_frames(frames: np.ndarray, settings: FlowSettings) -> np.ndarray:
    """uint8 RGB frames (L, H, W, 3) as the estimator's gray input under ``settings.frame_geometry``
    (the same plan as ``video_io.read_gray_video``, which reads files straight to it)."""
    shape_for = functools.partial(estimation_shape, settings=settings)
    box, target, side = estimation_plan((0, frames.shape[1], 0, frames.shape[2]), shape_for, settings.frame_geometry)
    top, bottom, left, right = box
    return np.stack([estimation_gray(cv2.cvtColor(np.ascontiguousarray(frame[top:bottom, left:right]),
                                                  cv2.COLOR_RGB2GRAY), target, side) for frame in frames])


def estimate_flow_sequence(frames: np.ndarray, settings: FlowSettings) -> torch.Tensor:
    """Conditions (L, 3, s, s) float32 from video frame 0 to every frame; frame 0 is exactly the identity.

    Frames of another aspect than square follow ``settings.frame_geometry`` (:func:`estimation_frames`).
    """
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (L, H, W, 3), got {tuple(frames.shape)}")
    if frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames, got {frames.dtype}")
    return estimate_gray_sequence(estimation_frames(frames, settings), settings)


def estimate_video_flows(frames: np.ndarray, settings: FlowSettings) -> torch.Tensor:
    """Conditions (B, L, 3, s, s) of a batch of uint8 videos (B, L, H, W, 3), one :func:`estimate_flow_sequence` each.

    The consistency metrics pass generated videos rounded to uint8 (as frames read from disk), so that
    their flows are made exactly as the data pipeline made the conditions.
    """
    if frames.ndim != 5 or frames.shape[-1] != 3:
        raise ValueError(f"expected videos of shape (B, L, H, W, 3), got {tuple(frames.shape)}")
    return torch.stack([estimate_flow_sequence(np.ascontiguousarray(clip), settings) for clip in frames])


def flow_settings_for(flow: torch.Tensor, settings: FlowSettings | None) -> FlowSettings:
    """The estimator settings for conditions ``flow`` (..., 3, s, s): the defaults at flow_size s if None.

    Raises ``ValueError`` when given settings store flows at another size than the conditions.
    """
    h, w = flow.shape[-2:]
    if h != w:
        raise ValueError(f"flow maps must be square (the estimator stores s x s maps), got {h} x {w}")
    if settings is None:
        return FlowSettings(flow_size=int(h))
    if settings.flow_size != h:
        raise ValueError(
            f"flow_settings.flow_size={settings.flow_size} but the conditioning flow maps are {h} x {w}; "
            "pass the settings the conditions were made with (e.g. datamodule.flow_settings)"
        )
    return settings
