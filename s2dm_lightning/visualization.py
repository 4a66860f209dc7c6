"""Turn videos and flow/occlusion conditions into uint8 pictures for people to look at.

Pure functions: tensors in, uint8 numpy arrays (frames last: (F, H, W, 3)) out. The
condition format is the one of :mod:`s2dm_lightning.flow_format`: channels 0-1 a
``grid_sample`` grid that says where each pixel of frame i comes from in the reference
frame, channel 2 the occlusion map (1 = visible in the reference frame).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from s2dm_lightning.flow_format import grid_to_displacement

SEPARATOR_PX = 2
SEPARATOR_VALUE = 110  # mid-grey lines between panels/cells: visible beside white (no flow) and black
CAPTION_BAND_PX = 18
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_SCALE = 0.4


def _as_numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy() if x.dtype != torch.uint8 else x.detach().cpu().numpy()
    return np.asarray(x)


def _check_condition(condition: torch.Tensor | np.ndarray) -> np.ndarray:
    cond = _as_numpy(condition).astype(np.float32)
    if cond.ndim != 4 or cond.shape[1] != 3:
        raise ValueError(f"condition must have shape (F, 3, h, w), got {tuple(cond.shape)}")
    return cond


def to_uint8_video(frames: torch.Tensor | np.ndarray) -> np.ndarray:
    """Float frames (F, 3, H, W) in [-1, 1] -> uint8 (F, H, W, 3); values outside [-1, 1] are clipped.

    A uint8 array that is already (F, H, W, 3) is returned unchanged, so the helpers below
    accept either form.
    """
    x = _as_numpy(frames)
    if x.dtype == np.uint8:
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"uint8 frames must have shape (F, H, W, 3), got {x.shape}")
        return x
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"frames must have shape (F, 3, H, W) with values in [-1, 1], got {x.shape}")
    x = np.clip((x.astype(np.float32) + 1.0) * 127.5, 0.0, 255.0)
    # round, not truncate: -1 -> 0, 0 -> 128, 1 -> 255
    return np.rint(x).astype(np.uint8).transpose(0, 2, 3, 1)


def _make_colorwheel() -> np.ndarray:
    """The Middlebury colour wheel (Baker et al., 2011): (55, 3) RGB in [0, 1].

    Hue segments red -> yellow -> green -> cyan -> blue -> magenta -> red, with more
    steps in the segments the eye separates best.
    """
    segments = [
        (15, (1, 0, 0), (1, 1, 0)),
        (6, (1, 1, 0), (0, 1, 0)),
        (4, (0, 1, 0), (0, 1, 1)),
        (11, (0, 1, 1), (0, 0, 1)),
        (13, (0, 0, 1), (1, 0, 1)),
        (6, (1, 0, 1), (1, 0, 0)),
    ]
    parts = []
    for steps, start, end in segments:
        t = np.arange(steps, dtype=np.float32)[:, None] / steps
        parts.append(np.asarray(start, np.float32) * (1 - t) + np.asarray(end, np.float32) * t)
    return np.concatenate(parts, axis=0)


_COLORWHEEL = _make_colorwheel()


def displacement_to_rgb(dx: np.ndarray, dy: np.ndarray, max_magnitude: float) -> np.ndarray:
    """Colour vectors (dx, dy) of any shape: hue = direction, saturation = magnitude / max_magnitude.

    Zero vectors are white; vectors of length ``max_magnitude`` (or more) are fully saturated.
    Returns uint8 of shape dx.shape + (3,).
    """
    magnitude = np.sqrt(dx**2 + dy**2)
    radius = np.clip(magnitude / max_magnitude, 0.0, 1.0) if max_magnitude > 0 else np.zeros_like(magnitude)
    ncols = len(_COLORWHEEL)
    angle = np.arctan2(-dy, -dx) / np.pi  # in [-1, 1]
    position = (angle + 1.0) / 2.0 * (ncols - 1)
    k0 = np.floor(position).astype(np.int64) % ncols
    k1 = (k0 + 1) % ncols
    frac = (position - np.floor(position))[..., None]
    colour = (1 - frac) * _COLORWHEEL[k0] + frac * _COLORWHEEL[k1]
    # small vectors fade towards white, so "no motion" reads as blank paper
    colour = 1.0 - radius[..., None] * (1.0 - colour)
    return np.rint(colour * 255.0).astype(np.uint8)


def flow_to_rgb(condition: torch.Tensor | np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """Colour-wheel picture of the displacement of a video's conditions: (F, 3, h, w) -> uint8 (F, h, w, 3).

    The displacement is ``grid - identity`` (where each pixel of frame i comes from in the
    reference frame), measured in pixels so that directions are right on non-square maps.
    Identity flow is white.

    Args:
        condition: one video's conditions, shape (F, 3, h, w), format of ``flow_format``.
        max_magnitude: displacement (pixels) drawn fully saturated. Default: the largest one in the
            whole video, so that all its frames share one scale and can be compared.
    """
    cond = _check_condition(condition)
    disp = grid_to_displacement(torch.from_numpy(cond)).numpy()
    h, w = cond.shape[-2:]
    # grid units -> pixels (align_corners=True: [-1, 1] spans size - 1 pixel steps)
    dx = disp[:, 0] * max(w - 1, 1) / 2.0
    dy = disp[:, 1] * max(h - 1, 1) / 2.0
    if max_magnitude is None:
        max_magnitude = float(np.sqrt(dx**2 + dy**2).max()) if dx.size else 0.0
    if max_magnitude < 1e-6:  # no motion anywhere: all white rather than amplified noise
        max_magnitude = 0.0
    return displacement_to_rgb(dx, dy, max_magnitude)


def occlusion_to_rgb(condition: torch.Tensor | np.ndarray) -> np.ndarray:
    """The occlusion channel as grey: (F, 3, h, w) -> uint8 (F, h, w, 3); white = visible, black = occluded."""
    occ = np.clip(_check_condition(condition)[:, 2], 0.0, 1.0)
    grey = np.rint(occ * 255.0).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def resize_nearest(video: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of uint8 (F, h, w, C) to (F, height, width, C); exact for integer factors."""
    h, w = video.shape[1:3]
    if (h, w) == (height, width):
        return video
    rows = (np.arange(height) * h) // height
    cols = (np.arange(width) * w) // width
    return video[:, rows][:, :, cols]


def upscale(video: np.ndarray, scale: int) -> np.ndarray:
    """Repeat every pixel ``scale`` times in both directions (nearest): (F, h, w, C) -> (F, h*s, w*s, C)."""
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    if scale == 1:
        return video
    return np.repeat(np.repeat(video, scale, axis=1), scale, axis=2)


def _hconcat(videos: Sequence[np.ndarray], gap: int) -> np.ndarray:
    f, h = videos[0].shape[:2]
    separator = np.full((f, h, gap, 3), SEPARATOR_VALUE, np.uint8)
    parts: list[np.ndarray] = []
    for i, video in enumerate(videos):
        if i:
            parts.append(separator)
        parts.append(video)
    return np.concatenate(parts, axis=2)


def video_panel(
    frames: torch.Tensor | np.ndarray,
    condition: torch.Tensor | np.ndarray,
    real_frames: torch.Tensor | np.ndarray | None = None,
    scale: int = 4,
) -> np.ndarray:
    """Side by side per time step: generated | real (if given) | flow colour | occlusion.

    Args:
        frames: generated video, float (F, 3, H, W) in [-1, 1] or uint8 (F, H, W, 3).
        condition: its conditions (F, 3, h, w); resized (nearest) to H x W.
        real_frames: the real video, same forms and size as ``frames``, or None to leave it out.
        scale: nearest-neighbour upscaling so that 32-pixel videos are watchable.

    Returns:
        uint8 (F, H*scale, n*W*scale + (n-1)*2, 3) with n = 3 or 4 panels and 2-pixel grey separators.
    """
    generated = to_uint8_video(frames)
    num_frames, height, width = generated.shape[:3]
    cond = _check_condition(condition)
    if cond.shape[0] != num_frames:
        raise ValueError(f"{num_frames} frames but {cond.shape[0]} conditions")
    parts = [generated]
    if real_frames is not None:
        real = to_uint8_video(real_frames)
        if real.shape != generated.shape:
            raise ValueError(
                f"real frames {real.shape} differ in shape from generated frames {generated.shape}"
            )
        parts.append(real)
    parts.append(resize_nearest(flow_to_rgb(cond), height, width))
    parts.append(resize_nearest(occlusion_to_rgb(cond), height, width))
    return _hconcat([upscale(p, scale) for p in parts], SEPARATOR_PX)


def _caption_band(text: str, width: int) -> np.ndarray:
    band = np.zeros((CAPTION_BAND_PX, width, 3), np.uint8)
    # cut the caption to what fits, ending with "..." so a reader knows it was cut
    shown = text
    while shown and cv2.getTextSize(shown, _FONT, _FONT_SCALE, 1)[0][0] > width - 4:
        shown = shown[:-1]
    if shown != text and len(shown) > 3:
        shown = shown[:-3] + "..."
    cv2.putText(band, shown, (2, CAPTION_BAND_PX - 5), _FONT, _FONT_SCALE, (255, 255, 255), 1, cv2.LINE_AA)
    return band


def contact_sheet(
    videos: Sequence[np.ndarray],
    labels: Sequence[str] | None = None,
    scale: int = 1,
) -> np.ndarray:
    """One row per video, one column per frame, with an optional caption above each row.

    Args:
        videos: uint8 videos (F, H, W, 3) (float (F, 3, H, W) in [-1, 1] is converted). Videos of
            another size are resized (nearest) to the first one's; shorter ones leave black cells.
        labels: one caption per video, drawn in a black band of 18 pixels above its row; None for none.
        scale: nearest-neighbour upscaling of every frame.

    Returns:
        uint8 (rows * (band + H*scale) + (rows-1)*2, frames * W*scale + (frames-1)*2, 3),
        band = 18 with labels else 0, separators 2 pixels grey.
    """
    if not videos:
        raise ValueError("contact_sheet needs at least one video")
    if labels is not None and len(labels) != len(videos):
        raise ValueError(f"{len(videos)} videos but {len(labels)} labels")
    clips = [to_uint8_video(v) for v in videos]
    height, width = clips[0].shape[1:3]
    num_cols = max(c.shape[0] for c in clips)
    rows = []
    for i, clip in enumerate(clips):
        clip = resize_nearest(clip, height, width)
        if clip.shape[0] < num_cols:
            pad = np.zeros((num_cols - clip.shape[0], height, width, 3), np.uint8)
            clip = np.concatenate([clip, pad], axis=0)
        # frames side by side: treat the frame axis as the "panels" of a one-step video
        row = _hconcat([f[None] for f in upscale(clip, scale)], SEPARATOR_PX)[0]
        if labels is not None:
            row = np.concatenate([_caption_band(str(labels[i]), row.shape[1]), row], axis=0)
        rows.append(row)
    separator = np.full((SEPARATOR_PX, rows[0].shape[1], 3), SEPARATOR_VALUE, np.uint8)
    stacked: list[np.ndarray] = []
    for i, row in enumerate(rows):
        if i:
            stacked.append(separator)
        stacked.append(row)
    return np.concatenate(stacked, axis=0)
