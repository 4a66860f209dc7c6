"""Texture sticking: does fine detail on a moving shape move with it, or stay fixed on the screen?

Static shared noise is suspected to pin noise-borne detail to the screen (docs/noise_transport.md).
On the shape's pixels of frame i (visible in frame 1), the high-pass pattern of the generated frame
is compared with (a) generated frame 1's pattern carried by the true flow (``moving_error``: small
when the texture moves with the shape) and (b) frame 1's pattern at the same screen position
(``sticking_error``: small when it sticks). ``ratio`` = moving / sticking: below 1 the texture moves,
above 1 it sticks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from s2dm_lightning.flow_format import resize_condition, warp_reference


def high_pass(frames: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) -> (..., 1, H, W): the grey level minus its 3 x 3 box mean (edge pixels replicated)."""
    grey = frames.float().mean(-3, keepdim=True)
    flat = grey.reshape(-1, 1, *grey.shape[-2:])
    blurred = F.avg_pool2d(F.pad(flat, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return (flat - blurred).reshape(grey.shape)


def shape_interior(shape_mask: torch.Tensor) -> torch.Tensor:
    """(B, F, H, W) bool -> the pixels whose whole 3 x 3 high-pass window lies on the shape."""
    interior = -F.max_pool2d(-shape_mask.float().flatten(0, 1)[:, None], 3, stride=1, padding=1)
    return interior.view_as(shape_mask).bool()


def pattern_residuals(generated: torch.Tensor, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel |high-pass of frame i - frame 1's carried by the flow| and |... - frame 1's in place|.

    (B, F, 3, H, W) videos and their conditions -> two (B, F, 1, H, W) maps: the first is small where the
    detail moves with the flow, the second where it stays on the screen (frame 1: 0, and 0 to float rounding).
    """
    pattern = high_pass(generated)
    first = pattern[:, 0]
    return (pattern - warp_reference(first, condition)).abs(), (pattern - first[:, None]).abs()


def texture_sticking(generated: torch.Tensor, condition: torch.Tensor, shape_mask: torch.Tensor) -> dict[str, float]:
    """Moving and sticking errors (mean absolute high-pass difference) and their ratio.

    Args:
        generated: (B, F, 3, H, W) videos in [-1, 1].
        condition: the true conditions (B, F, 3, h, w) (frame i's backward grid to frame 1 and occlusion).
        shape_mask: (B, F, H, W) True on the moving shape's pixels of each frame.
    Frames 2..F count, on shape pixels visible in frame 1 whose 3 x 3 neighbourhood is all shape.
    """
    moving_map, still_map = pattern_residuals(generated, condition)  # (B, F, 1, H, W)
    visible = resize_condition(condition, tuple(generated.shape[-2:]), mode="bilinear")[:, :, 2] >= 0.5
    # only pixels whose whole 3 x 3 high-pass window lies on the shape: at its outline the window also
    # sees the (still) background, which would count as sticking whatever the shape's texture does
    pixels = (shape_interior(shape_mask) & visible)[:, 1:]
    if not bool(pixels.any()):
        raise ValueError("texture_sticking: no shape pixel of frames 2..F is visible in frame 1")
    moving = moving_map[:, 1:, 0][pixels].mean().item()
    sticking = still_map[:, 1:, 0][pixels].mean().item()
    return {"moving_error": moving, "sticking_error": sticking, "ratio": moving / max(sticking, 1e-12)}
