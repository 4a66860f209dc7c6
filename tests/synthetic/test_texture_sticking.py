"""The texture-sticking measure on constructed videos: a real moving texture vs one pasted on the screen."""

import pytest
import torch

from s2dm_lightning.flow_format import affine_condition
from s2dm_lightning.synthetic.texture_sticking import (
    high_pass,
    pattern_residuals,
    shape_interior,
    texture_sticking,
)

SIZE, FRAMES = 24, 4


def _scene(sticking: bool):
    """A checked square (2-pixel checks) moving 2 pixels right per frame over a striped background."""
    ys, xs = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    background = torch.where(ys % 4 < 2, 0.2, -0.2)
    frames, masks = [], []
    for f in range(FRAMES):
        left = 4 + 2 * f
        inside = (xs >= left) & (xs < left + 10) & (ys >= 7) & (ys < 17)
        anchor = 4 if sticking else left  # sticking: the checks stay where frame 1 drew them
        checks = torch.where(((xs - anchor) // 2 + (ys - 7) // 2) % 2 == 0, 0.9, 0.3)
        frames.append(torch.where(inside, checks, background).expand(3, -1, -1))
        masks.append(inside)
    # the shape's true backward map: frame f's pixel comes from 2 f pixels to its left (background ignored)
    maps = torch.tensor([[[1.0, 0.0, -2.0 * f], [0.0, 1.0, 0.0]] for f in range(FRAMES)])
    condition = affine_condition(maps, SIZE, SIZE)
    return torch.stack(frames)[None], condition[None], torch.stack(masks)[None]


def test_a_texture_moving_with_its_shape_scores_moving() -> None:
    result = texture_sticking(*_scene(sticking=False))
    assert result["moving_error"] < 1e-5  # integer shifts: the carried pattern is exact to float rounding
    assert result["sticking_error"] > 0.05 and result["ratio"] < 1e-3


def test_a_texture_pasted_at_a_fixed_screen_position_scores_sticking() -> None:
    result = texture_sticking(*_scene(sticking=True))
    # not 0 / not a huge ratio: the outline moves, so the shape's newly covered pixels and its edges
    # differ from frame 1 at the same screen position too (2.77 here); a moving texture scores < 1e-6
    assert result["ratio"] > 2
    assert result["moving_error"] > 0.05


def test_high_pass_removes_flat_areas_and_keeps_checks() -> None:
    flat = torch.full((1, 3, 6, 6), 0.4)
    assert high_pass(flat).abs().max() < 1e-6
    frames, _, _ = _scene(sticking=False)
    assert high_pass(frames[0, :1]).abs().max() > 0.1


def test_no_visible_shape_pixel_is_a_clear_error() -> None:
    frames, condition, mask = _scene(sticking=False)
    with pytest.raises(ValueError, match="no shape pixel"):
        texture_sticking(frames, condition, torch.zeros_like(mask))


def test_pattern_residuals_are_the_per_pixel_maps_the_measure_averages() -> None:
    frames, condition, mask = _scene(sticking=False)
    moving, still = pattern_residuals(frames, condition)
    assert moving.shape == still.shape == (1, FRAMES, 1, SIZE, SIZE)
    # frame 1 against itself: exactly 0 in place; through grid_sample's identity grid, float rounding (~1e-6)
    assert still[:, 0].abs().max() == 0 and moving[:, 0].abs().max() < 1e-5
    # on the moving square's pixels whose 3 x 3 window is all square, the moved map is ~0 (integer shifts)
    # and the in-place map is not
    inside = shape_interior(mask)[0, 1:]
    assert moving[0, 1:, 0][inside].max() < 1e-5
    assert still[0, 1:, 0][inside].mean() > 0.05
