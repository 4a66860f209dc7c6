"""The flow/occlusion condition format shared by data, models and metrics.

Convention (LFDM / RegionMM): the temporal condition y^i of frame i is a tensor of
shape (3, h, w). Channels 0-1 are a ``torch.nn.functional.grid_sample`` grid (x, y)
in [-1, 1] that says, for every pixel of frame i, where it comes from in the
reference frame (frame 1), so ``warp(reference, grid) ~= frame_i``. Channel 2 is the
occlusion map in [0, 1] (1 = visible in the reference frame). Coordinates follow
``align_corners=True`` (pixel centres of the border pixels sit at -1 and 1), as in
RegionMM's ``make_coordinate_grid``. Frame 1's condition is the identity grid with
occlusion 1.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

FLOW_CHANNELS = 3

#: How :func:`resize_condition` resizes; each caller keeps the numerics it was trained/measured with.
ResizeMode = Literal["keep_identity", "bilinear"]


def identity_grid(height: int, width: int, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """The identity sampling grid, shape (2, height, width), channel 0 = x, channel 1 = y."""
    ys = torch.linspace(-1.0, 1.0, height, dtype=dtype, device=device)
    xs = torch.linspace(-1.0, 1.0, width, dtype=dtype, device=device)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=0)


def identity_condition(height: int, width: int, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """Frame 1's condition: identity grid and occlusion 1, shape (3, height, width)."""
    ones = torch.ones(1, height, width, dtype=dtype, device=device)
    return torch.cat([identity_grid(height, width, dtype, device), ones], dim=0)


def grid_to_displacement(condition: torch.Tensor) -> torch.Tensor:
    """Replace the absolute grid by its displacement from the identity (zero = no motion).

    ``condition`` has shape (..., 3, h, w); the result has the same shape, channels
    (dx, dy, occlusion) with dx, dy in grid units ([-1, 1] spans the frame).
    """
    h, w = condition.shape[-2:]
    identity = identity_grid(h, w, condition.dtype, condition.device)
    return torch.cat([condition[..., :2, :, :] - identity, condition[..., 2:, :, :]], dim=-3)


def resize_condition(condition: torch.Tensor, size: int | tuple[int, int], *, mode: ResizeMode) -> torch.Tensor:
    """Resize conditions or flow maps (..., C, h, w) to (..., C, *size); the same size is returned as it is.

    Args:
        condition: conditions (..., 3, h, w) for ``keep_identity``; any maps (..., C, h, w) for ``bilinear``
            (a grid, displacement channels).
        size: the new (height, width), or one int for a square.
        mode: ``"keep_identity"``: the displacement from the identity (grid units, independent of the
            resolution) and the occlusion are resized, by area average when the width shrinks and
            bilinearly (align_corners=True) when it grows, in float32, and the new size's identity grid
            is added back, so the identity flow stays exact; returned in the input dtype (the models'
            training targets and sampled flows). ``"bilinear"``: every channel bilinearly with
            align_corners=True, in the input dtype (the metrics, :func:`warp`, the concat flow channels).
    """
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if tuple(condition.shape[-2:]) == (height, width):
        return condition
    lead, channels = condition.shape[:-3], condition.shape[-3]
    if mode == "bilinear":
        maps = F.interpolate(condition.reshape(-1, *condition.shape[-3:]), size=(height, width), mode="bilinear",
                             align_corners=True)
        return maps.reshape(*lead, channels, height, width)
    if mode != "keep_identity":
        raise ValueError(f"mode must be 'keep_identity' or 'bilinear', got {mode!r}")
    maps = grid_to_displacement(condition).reshape(-1, *condition.shape[-3:]).float()
    if width < condition.shape[-1]:
        maps = F.interpolate(maps, size=(height, width), mode="area")
    else:
        maps = F.interpolate(maps, size=(height, width), mode="bilinear", align_corners=True)
    maps[:, :2] += identity_grid(height, width, device=maps.device)
    return maps.reshape(*lead, FLOW_CHANNELS, height, width).to(condition.dtype)


def warp(images: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
    """Warp reference images (N, C, H, W) with conditions (N, 3, h, w); the grid is resized to H x W."""
    grid = resize_condition(condition[:, :2], tuple(images.shape[-2:]), mode="bilinear")
    return F.grid_sample(images, grid.permute(0, 2, 3, 1), mode="bilinear", padding_mode="border", align_corners=True)


def warp_reference(reference: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
    """Reference frames (B, C, H, W) warped by each frame's condition (B, F, 3, h, w) -> (B, F, C, H, W)."""
    b, f = conditions.shape[:2]
    repeated = reference[:, None].expand(-1, f, -1, -1, -1).flatten(0, 1)
    warped = warp(repeated, conditions.flatten(0, 1).to(reference.device, reference.dtype))
    return warped.unflatten(0, (b, f))


def affine_condition(source_from_target: torch.Tensor, height: int, width: int,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Conditions (F, 3, height, width) of frames that are the reference frame moved by affine maps.

    ``source_from_target`` (F, 2, 3) maps a pixel of frame i to where it comes from in the
    reference, both as (x, y) in pixels from the frame centre (x right, y down); float64 keeps
    the closed forms exact to float32. An identity map gives exactly the identity condition.
    Occlusion is 1 where the source lies inside the reference frame, else 0: an affine motion
    is forward-backward consistent everywhere, so leaving the frame is all the consistency rule
    of ``data.flow`` would mark.
    """
    matrices = source_from_target.double()
    half = torch.tensor([(width - 1) / 2, (height - 1) / 2], dtype=torch.float64).view(2, 1, 1)
    target = identity_grid(height, width, torch.float64) * half  # pixels from the centre
    homogeneous = torch.cat([target, torch.ones_like(target[:1])], dim=0)
    displacement = (torch.einsum("fij,jhw->fihw", matrices, homogeneous) - target) / half  # grid units
    grid = identity_grid(height, width, dtype) + displacement.to(dtype)
    inside = ((target + displacement * half).abs() <= half + 1e-6).all(dim=1, keepdim=True)
    return torch.cat([grid, inside.to(dtype)], dim=1)
