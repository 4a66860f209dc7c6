"""Does the generated motion follow the condition? Simple, weight-free measures for the synthetic data.

The synthetic videos hold one saturated shape over a muted background, so the shape is found as
the pixels whose channel range (max - min of RGB) is large. A video's motion is the track of the
centroid of those pixels; a flow sequence's motion is its magnitude-weighted mean displacement.
Both are compared with the caption's direction (left/right/up/down) and, for videos generated
from real flows, with the real video's track. In the disocclusion world a second shape of another
colour enters: pass the captions' colours (:func:`caption_color`) and only the saturated pixels
nearest the caption's colour count, i.e. the main shape's.
"""

from __future__ import annotations

import torch

from s2dm_lightning.flow_format import grid_to_displacement, warp_reference
from s2dm_lightning.synthetic.shapes import COLORS, MOTIONS

DIRECTIONS = {motion: torch.tensor(vector) for motion, vector in MOTIONS.items()}
SATURATION_THRESHOLD = 0.9  # channel range in [-1, 1] units; muted backgrounds stay below about 0.5


def caption_direction(caption: str) -> str:
    """The motion phrase a synthetic caption ends with, e.g. "moves to the left"."""
    for motion in MOTIONS:
        if caption.endswith(motion):
            return motion
    raise ValueError(f"caption {caption!r} ends with none of the synthetic motions {tuple(MOTIONS)}")


def caption_color(caption: str) -> str:
    """The colour a synthetic caption names, e.g. "red" for "a rotating red square moves up"."""
    for word in caption.split():
        if word in COLORS:
            return word
    raise ValueError(f"caption {caption!r} names none of the synthetic colours {tuple(COLORS)}")


def shape_mask(
    frames: torch.Tensor, threshold: float = SATURATION_THRESHOLD, colors: list[str] | None = None
) -> torch.Tensor:
    """(B, F, 3, H, W) in [-1, 1] -> (B, F, H, W) bool: the saturated pixels (the shape).

    ``colors`` (one per video): only saturated pixels whose nearest palette colour is that one.
    """
    mask = frames.amax(2) - frames.amin(2) > threshold
    if colors is not None:
        palette = torch.tensor(list(COLORS.values()), dtype=frames.dtype) / 127.5 - 1  # (K, 3) in [-1, 1]
        nearest = (frames.movedim(2, -1)[..., None, :] - palette).norm(dim=-1).argmin(-1)  # (B, F, H, W)
        wanted = torch.tensor([list(COLORS).index(c) for c in colors]).view(-1, 1, 1, 1)
        mask &= nearest == wanted
    return mask


def shape_centroids(
    frames: torch.Tensor, threshold: float = SATURATION_THRESHOLD, colors: list[str] | None = None
) -> torch.Tensor:
    """(B, F, 3, H, W) in [-1, 1] -> (B, F, 2) centroid (x, y) in pixels of the saturated pixels.

    ``colors`` (one per video): count only saturated pixels whose nearest palette colour is that one
    (the main shape when another shape is in view). NaN where a frame has no such pixel.
    """
    mask = shape_mask(frames, threshold, colors).float()
    h, w = frames.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=mask.dtype), torch.arange(w, dtype=mask.dtype), indexing="ij")
    total = mask.sum((2, 3))
    centroid = torch.stack([(mask * xs).sum((2, 3)), (mask * ys).sum((2, 3))], dim=-1) / total[..., None]
    return torch.where(total[..., None] > 0, centroid, torch.full_like(centroid, float("nan")))


def video_direction(
    frames: torch.Tensor, threshold: float = SATURATION_THRESHOLD, colors: list[str] | None = None
) -> torch.Tensor:
    """(B, F, 3, H, W) -> (B, 2): the shape's centroid in the last 4 frames minus that in the first 4."""
    centroids = shape_centroids(frames, threshold, colors)
    return centroids[:, -4:].mean(1) - centroids[:, :4].mean(1)


def flow_direction(flows: torch.Tensor) -> torch.Tensor:
    """(B, F, 3, h, w) flow conditions -> (B, 2) motion in grid units (x right, y down), last 4 frames.

    The grid says where a pixel comes FROM, so a shape moving right has a negative displacement.
    """
    disp = grid_to_displacement(flows.float())[:, -4:, :2]
    weight = disp.norm(dim=2, keepdim=True)
    return -(disp * weight).sum((1, 3, 4)) / weight.sum((1, 3, 4)).clamp_min(1e-8)


def direction_score(vectors: torch.Tensor, captions: list[str]) -> dict[str, float]:
    """Accuracy of the 4-way direction, mean cosine with the caption's direction, mean vector length."""
    names = list(DIRECTIONS)
    basis = torch.stack([DIRECTIONS[n] for n in names])
    valid = torch.isfinite(vectors).all(1) & (vectors.norm(dim=1) > 1e-6)
    truth = torch.tensor([names.index(caption_direction(c)) for c in captions])
    vectors = vectors.nan_to_num(0)
    predicted = (vectors @ basis.T).argmax(1)
    cosine = torch.nn.functional.cosine_similarity(vectors, basis[truth], dim=1)
    return {"n": len(captions), "accuracy": float(((predicted == truth) & valid).float().mean()),
            "mean_cosine": float(cosine[valid].mean()) if valid.any() else float("nan"),
            "mean_length": float(vectors[valid].norm(dim=1).mean()) if valid.any() else float("nan"),
            "undetermined": int((~valid).sum())}


def track_errors(
    generated: torch.Tensor, real: torch.Tensor, colors: list[str] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-video mean distance (px) of the generated shape's centroid from the real one, frames 2..F.

    Returns (error, static_error): ``static_error`` is the same for a shape that stays where it is
    in the real frame 1, the score of a model that ignores the flow. NaN frames count as missing.
    ``colors``: as in :func:`shape_centroids`.
    """
    gen, ref = shape_centroids(generated, colors=colors)[:, 1:], shape_centroids(real, colors=colors)
    start = ref[:, :1].expand_as(ref[:, 1:])
    ref = ref[:, 1:]
    return (gen - ref).norm(dim=-1).nanmean(1), (start - ref).norm(dim=-1).nanmean(1)


def background_change(generated: torch.Tensor, real: torch.Tensor, condition: torch.Tensor | None = None,
                      tolerance: float = 1e-3) -> torch.Tensor:
    """(B,) mean |frame_i - frame_1| of the generated video where the REAL video only moves.

    Without ``condition``: pixels where the real video never changes. With the true conditions
    (B, F, 3, H, W) (the disocclusion world, whose camera pans by whole pixels), frame 1 is first
    warped by frame i's condition, and the pixels are those visible in frame 1 at every frame whose
    real content that warp reproduces: the background drifting against the camera's motion.
    NaN for a video without such pixels.
    """
    if condition is None:
        carried_real, carried = real[:, :1], generated[:, :1]
        static = (real - carried_real).abs().amax(dim=(1, 2)) < tolerance  # (B, H, W)
    else:
        carried_real, carried = warp_reference(real[:, 0], condition), warp_reference(generated[:, 0], condition)
        reproduced = (real - carried_real).abs().amax(dim=2) < tolerance  # (B, F, H, W)
        static = (reproduced & (condition[:, :, 2] > 0.5)).all(dim=1)
        carried = carried[:, 1:]
    change = (generated[:, 1:] - carried).abs().mean(2)  # (B, F-1, H, W)
    mask = static[:, None].expand_as(change).float()
    drift = (change * mask).sum((1, 2, 3)) / mask.sum((1, 2, 3)).clamp_min(1)
    return torch.where(static.flatten(1).any(1), drift, torch.full_like(drift, float("nan")))

