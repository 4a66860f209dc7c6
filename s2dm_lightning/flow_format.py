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

import torch
import torch.nn.functional as F

FLOW_CHANNELS = 3


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


def warp(images: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
    """Warp reference images (N, C, H, W) with conditions (N, 3, h, w); the grid is resized to H x W."""
    grid = condition[:, :2]
    if grid.shape[-2:] != images.shape[-2:]:
        grid = F.interpolate(grid, size=images.shape[-2:], mode="bilinear", align_corners=True)
    return F.grid_sample(images, grid.permute(0, 2, 3, 1), mode="bilinear", padding_mode="border", align_corners=True)


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
