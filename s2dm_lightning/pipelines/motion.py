"""Motion sources: where the flows that drive a generated video come from.

Every function returns conditions in the project's format (:mod:`s2dm_lightning.flow_format`):
(F, 3, s, s) or (B, F, 3, s, s), a grid_sample grid into frame 0 plus an occlusion map, at the
model's flow size s, with frame 0 exactly the identity. Three sources:

- a driving video (file or frame folder, any size and length): :func:`flows_from_video`;
- the caption alone, through the stage-one flow generator (paper Sec. 3.4): :func:`flows_from_caption`;
- a formula: :func:`translate_flows`, :func:`zoom_flows`, :func:`rotate_flows`, or a
  ``translate:dx,dy`` / ``zoom:f`` / ``rotate:deg`` string via :func:`parametric_flows`.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from s2dm_lightning.data.flow import FlowSettings, estimate_gray_sequence, estimation_frames
from s2dm_lightning.data.footage import constant_first_frame, frame_count_mismatch, short_video
from s2dm_lightning.data.geometry import DEFAULT_FRAME_GEOMETRY, fit_frames, kept_box
from s2dm_lightning.data.sampling import interval_frame_indices
from s2dm_lightning.data.video_io import count_frames, read_video
from s2dm_lightning.flow_format import FLOW_CHANNELS, affine_condition, identity_condition, resize_condition

if TYPE_CHECKING:
    from s2dm_lightning.models.flow_generator import FlowGenerator
    from s2dm_lightning.pipelines.s2dm_pipeline import S2DMPipeline

NUM_FRAMES = 16  # the paper's clip length
# stage one draws from generators seeded ``FLOW_STREAM_OFFSET + seed``, apart from S2DM's ``seed`` streams
FLOW_STREAM_OFFSET = 2**32
PARAMETRIC_KINDS = {"translate": 2, "zoom": 1, "rotate": 1}  # kind -> number of values


# ------------------------------------------------------------------ a driving video
def flows_from_video(
    path: str | Path,
    flow_size: int,
    num_frames: int = NUM_FRAMES,
    estimator: str = "opencv-dis",
    geometry: str = DEFAULT_FRAME_GEOMETRY,
    frame_size: int | None = None,
    key: str = "--motion_from",
) -> tuple[torch.Tensor, np.ndarray]:
    """Flows (num_frames, 3, flow_size, flow_size) of a video file or frame folder, and its clip frames.

    The clip takes the first frame of each of ``num_frames`` equal intervals of the video, as evaluation
    does, and ONLY those frames are decoded (``video_io.read_video`` with indices: decord seeks to them,
    OpenCV grabs past the others without converting them). Frames become square under the frame
    ``geometry`` of the model (``data.geometry``: what its training clips and flows did), then flows
    from the clip's frame 0 to each of its frames with the project's estimator (``data.flow``: at the
    native size capped to 256 px, resized to ``flow_size``; each estimate starts from the previous clip
    frame's). Returns the flows and the clip's uint8 frames (num_frames, S, S, 3), S = ``frame_size``
    (default: the side of the square at the video's own scale).

    Errors (``ValueError``, naming ``key`` and the file): one frame; a constant first frame (the flows
    would all be zero). Warnings: a video shorter than ``num_frames`` (frames repeat); a header that
    states another frame count than decodes.
    """
    available = count_frames(path)
    if available < 2:
        raise ValueError(f"{key}: '{path}' has {available} frame(s): a driving video needs at least 2 "
                         "(a first frame and a motion)")
    for note in (frame_count_mismatch(path, available), short_video(path, available, num_frames, "--num_frames")):
        if note is not None:
            warnings.warn(f"{key}: {note}", stacklevel=2)
    indices = interval_frame_indices(available, num_frames, random=False)
    unique = sorted(set(indices))
    frames = read_video(path, unique)
    settings = FlowSettings(estimator=estimator, flow_size=flow_size, frame_geometry=geometry)
    gray = estimation_frames(frames, settings)
    problem = constant_first_frame(gray, path)
    if problem is not None:
        raise ValueError(f"{key}: {problem}")
    flows = estimate_gray_sequence(gray, settings)
    height, width = frames.shape[1:3]
    top, bottom, left, right = kept_box(height, width, geometry)
    side = frame_size or (max(height, width) if geometry == "pad" else min(bottom - top, right - left))
    clip = fit_frames(frames, side, geometry)
    order = [unique.index(i) for i in indices]  # a short video repeats frames: decoded once, used again
    return flows[order], clip[order]


# ----------------------------------------------------------------- the caption alone
@torch.no_grad()
def flows_from_caption(
    pipe: S2DMPipeline,
    flow_generator: FlowGenerator,
    prompt: str | list[str],
    seed: int = 0,
    num_frames: int = NUM_FRAMES,
) -> torch.Tensor:
    """Flows (B, num_frames, 3, s, s) for prompts, through the stage-one flow generator (Fig. 5).

    (a) the pipeline samples the reference frame from z_T with the identity flow; (b) the flow
    generator samples the flows given that frame and the prompt. Video k uses seed ``seed + k``:
    ``pipe(prompt, flows, generator=[torch.Generator().manual_seed(seed + k) ...])`` then starts
    from the same z_T as (a), which is step (c) of the two-stage route.
    """
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    seeds = [seed + k for k in range(len(prompts))]
    size = pipe.flow_size
    identity = identity_condition(size, size).expand(len(prompts), 1, FLOW_CHANNELS, size, size)
    streams = [torch.Generator().manual_seed(s) for s in seeds]
    reference = pipe(prompts, flows=identity, generator=streams, output_type="pt").frames[:, 0] * 2 - 1
    flow_streams = [torch.Generator().manual_seed(FLOW_STREAM_OFFSET + s) for s in seeds]
    flows = flow_generator.sample_flows(reference.to(flow_generator.device), prompts, num_frames,
                                        generator=flow_streams)
    flows = resize_condition(flows.float().cpu(), size, mode="keep_identity")
    flows[:, 0] = identity_condition(size, size)
    return flows


# ----------------------------------------------------------------------- a formula
def _ramp(num_frames: int) -> torch.Tensor:
    """0 at frame 0 rising linearly to 1 at the last frame: the motion is spread over the clip."""
    if num_frames < 2:
        raise ValueError(f"num_frames must be at least 2, got {num_frames}")
    return torch.linspace(0.0, 1.0, num_frames, dtype=torch.float64)


def _scale_to_flow(flow_size: int, frame_size: int | None) -> float:
    """Pixels of a frame_size frame -> pixels of the flow map (align_corners: border centres match)."""
    return 1.0 if frame_size is None else (flow_size - 1) / (frame_size - 1)


def translate_flows(dx: float, dy: float, flow_size: int, num_frames: int = NUM_FRAMES,
                    frame_size: int | None = None) -> torch.Tensor:
    """The content moves by (dx, dy) pixels (x right, y down) over the clip, frame i by i / (F - 1) of it.

    Pixels are those of the flow map, or of a ``frame_size`` frame (e.g. the generated video).
    Where the moved frame shows what lies outside the reference, occlusion is 0.
    """
    ramp, scale = _ramp(num_frames), _scale_to_flow(flow_size, frame_size)
    matrices = torch.zeros(num_frames, 2, 3, dtype=torch.float64)
    matrices[:, 0, 0] = matrices[:, 1, 1] = 1.0
    matrices[:, 0, 2], matrices[:, 1, 2] = -dx * scale * ramp, -dy * scale * ramp
    return affine_condition(matrices, flow_size, flow_size)


def zoom_flows(factor: float, flow_size: int, num_frames: int = NUM_FRAMES) -> torch.Tensor:
    """The content grows about the centre by ``factor`` over the clip (< 1 shrinks), frame i by 1 + (factor - 1) i / (F - 1)."""
    if not factor > 0:
        raise ValueError(f"zoom factor must be > 0, got {factor}")
    scales = 1.0 + (factor - 1.0) * _ramp(num_frames)
    matrices = torch.zeros(num_frames, 2, 3, dtype=torch.float64)
    matrices[:, 0, 0] = matrices[:, 1, 1] = 1.0 / scales
    return affine_condition(matrices, flow_size, flow_size)


def rotate_flows(degrees: float, flow_size: int, num_frames: int = NUM_FRAMES) -> torch.Tensor:
    """The content turns about the centre by ``degrees`` over the clip, counter-clockwise on screen for > 0."""
    angles = math.radians(degrees) * _ramp(num_frames)
    cos, sin = torch.cos(angles), torch.sin(angles)
    # on screen (y down) a counter-clockwise turn sends q to [[c, s], [-s, c]] q; the source is its inverse
    matrices = torch.zeros(num_frames, 2, 3, dtype=torch.float64)
    matrices[:, 0, 0], matrices[:, 0, 1] = cos, -sin
    matrices[:, 1, 0], matrices[:, 1, 1] = sin, cos
    return affine_condition(matrices, flow_size, flow_size)


def parse_motion(spec: str) -> tuple[str, list[float]]:
    """``translate:dx,dy`` | ``zoom:f`` | ``rotate:deg`` -> (kind, values), or a ValueError naming the spec."""
    kind, _, values = spec.partition(":")
    kind = kind.strip().lower()
    usage = "expected translate:DX,DY (pixels), zoom:FACTOR or rotate:DEGREES"
    if kind not in PARAMETRIC_KINDS:
        raise ValueError(f"--motion={spec!r}: unknown motion {kind!r}; {usage}")
    try:
        numbers = [float(v) for v in values.split(",")]
    except ValueError:
        raise ValueError(f"--motion={spec!r}: {values!r} is not a list of numbers; {usage}") from None
    if len(numbers) != PARAMETRIC_KINDS[kind] or not all(math.isfinite(v) for v in numbers):
        raise ValueError(f"--motion={spec!r}: {kind} takes {PARAMETRIC_KINDS[kind]} finite number(s); {usage}")
    return kind, numbers


def parametric_flows(spec: str, flow_size: int, num_frames: int = NUM_FRAMES,
                     frame_size: int | None = None) -> torch.Tensor:
    """Flows (num_frames, 3, s, s) for a ``--motion`` string; translate pixels are of a ``frame_size`` frame."""
    kind, values = parse_motion(spec)
    if kind == "translate":
        return translate_flows(*values, flow_size, num_frames, frame_size)
    if kind == "zoom":
        return zoom_flows(values[0], flow_size, num_frames)
    return rotate_flows(values[0], flow_size, num_frames)
