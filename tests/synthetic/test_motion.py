"""Weight-free motion measures of the synthetic data, on videos whose answers are known by construction."""

import math

import numpy as np
import pytest
import torch

from s2dm_lightning.flow_format import identity_grid
from s2dm_lightning.synthetic.motion import (
    background_change,
    caption_color,
    caption_direction,
    direction_score,
    flow_direction,
    shape_centroids,
    track_errors,
    video_direction,
)
from s2dm_lightning.synthetic.world import render_video


def moving_square(dx: int, dy: int, frames: int = 6, size: int = 16) -> torch.Tensor:
    """(1, F, 3, H, W): a 2 x 2 red square starting with its top-left at (6, 6), moving (dx, dy) a frame."""
    video = torch.full((1, frames, 3, size, size), -0.6)
    for i in range(frames):
        x, y = 6 + dx * i, 6 + dy * i
        video[0, i, :, y : y + 2, x : x + 2] = torch.tensor([1.0, -1.0, -1.0]).view(3, 1, 1)
    return video


def test_centroids_follow_a_known_square():
    video = moving_square(1, 0)
    expected = torch.tensor([[6.5 + i, 6.5] for i in range(6)])
    torch.testing.assert_close(shape_centroids(video)[0], expected)
    torch.testing.assert_close(video_direction(video)[0], torch.tensor([2.0, 0.0]))
    assert shape_centroids(torch.zeros(1, 2, 3, 4, 4)).isnan().all(), "no shape: NaN, not a made-up position"


def test_track_errors_against_the_real_video_and_a_static_shape():
    real = moving_square(1, 0)
    error, static = track_errors(real, real)
    assert error.item() == 0
    assert static.item() == pytest.approx(sum(range(1, 6)) / 5)  # frames 2..6 are 1..5 px from the start
    error, _ = track_errors(moving_square(0, 1), real)  # moves down instead of right
    assert error.item() == pytest.approx(sum(math.sqrt(2) * i for i in range(1, 6)) / 5)


def test_direction_score_on_rendered_synthetic_videos():
    captions, videos = [], []
    for motion in ("moves to the left", "moves to the right", "moves up", "moves down"):
        frames = render_video("blue", "circle", motion, 8, 32, np.random.default_rng(0))
        videos.append(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1)
        captions.append(f"a blue circle {motion}")
    score = direction_score(video_direction(torch.stack(videos)), captions)
    assert score["accuracy"] == 1.0 and score["mean_cosine"] > 0.99
    reversed_score = direction_score(-video_direction(torch.stack(videos)), captions)
    assert reversed_score["accuracy"] == 0.0
    with pytest.raises(ValueError, match="jumps"):
        caption_direction("a blue circle jumps")


def test_flow_direction_of_a_uniform_shift():
    grid = identity_grid(8, 8)  # (2, h, w) in [-1, 1]
    shifted = grid.clone()
    shifted[0] -= 2 / 7  # every pixel comes from one pixel to its left: content moves right
    condition = torch.cat([shifted, torch.ones(1, 8, 8)]).expand(1, 5, 3, 8, 8)
    torch.testing.assert_close(flow_direction(condition)[0], torch.tensor([2 / 7, 0.0]))


def test_background_change_is_zero_for_a_constant_background_and_sees_drift():
    real = moving_square(1, 0)
    assert background_change(real, real).item() == 0
    drifting = real.clone()
    drifting[:, 1:] += 0.1
    assert background_change(drifting, real).item() == pytest.approx(0.1, abs=1e-5)


def test_colors_keep_only_the_captioned_shape():
    # A red square moving right and a green one (an entering shape) moving down, in the same video.
    video = moving_square(1, 0, size=24)
    for i in range(video.shape[1]):
        video[0, i, :, 14 + i : 16 + i, 2:4] = torch.tensor([-0.69, 0.69, -0.45]).view(3, 1, 1)  # COLORS["green"]
    red_only = shape_centroids(video, colors=["red"])[0]
    torch.testing.assert_close(red_only, torch.tensor([[6.5 + i, 6.5] for i in range(6)]))
    assert not torch.allclose(shape_centroids(video)[0], red_only), "without colours both shapes count"
    error, _ = track_errors(video, moving_square(1, 0, size=24), colors=["red"])
    assert error.item() == 0
    assert caption_color("a rotating red square moves up") == "red"
    with pytest.raises(ValueError, match="names none of the synthetic colours"):
        caption_color("a square moves up")


def test_background_change_is_nan_without_a_static_pixel():
    real = moving_square(1, 0)
    real[:, 1:] += 0.01  # e.g. a panning camera: every pixel changes
    assert background_change(real, real).isnan().all()


def panning_texture(frames: int = 5, size: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, F, 3, H, W) frames of a random texture the camera pans over, one whole pixel a frame to the
    right, and their true conditions (1, F, 3, H, W): content moves left, new columns enter at the right."""
    canvas = torch.rand(3, size, size + frames, generator=torch.Generator().manual_seed(0)) * 2 - 1
    video = torch.stack([canvas[:, :, i : i + size] for i in range(frames)])[None]
    grid = identity_grid(size, size).expand(frames, -1, -1, -1).clone()
    shift = torch.arange(frames, dtype=torch.float32).view(frames, 1, 1)
    grid[:, 0] += shift * 2 / (size - 1)  # frame i, column x shows frame 0's column x + i
    visible = (grid[:, :1] <= 1 + 1e-6).float()
    return video, torch.cat([grid, visible], dim=1)[None]


def test_background_change_follows_a_panning_camera_with_the_true_conditions():
    real, condition = panning_texture()
    assert background_change(real, real).isnan().all(), "without conditions every pixel of a pan changes"
    assert background_change(real, real, condition).item() == pytest.approx(0, abs=1e-6)
    drifting = real.clone()
    drifting[:, 1:] += 0.1
    assert background_change(drifting, real, condition).item() == pytest.approx(0.1, abs=1e-5)
    frozen = real[:, :1].expand_as(real)  # a generator that ignores the camera's motion
    assert background_change(frozen, real, condition).item() > 0.3
    hidden = condition.clone()
    hidden[:, -1, 2] = 0  # no pixel of frame 1 is visible in the last frame
    assert background_change(real, real, hidden).isnan().all()
