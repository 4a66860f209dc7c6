"""The textured world: checks that move with the shape over still stripes, with exact true flows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from s2dm_lightning.flow_format import identity_condition, warp
from s2dm_lightning.synthetic.motion import shape_centroids
from s2dm_lightning.synthetic.texture_sticking import texture_sticking
from s2dm_lightning.synthetic.textured import render_textured_video
from s2dm_lightning.synthetic.world import generate_synthetic_dataset, read_ground_truth

SIZE, FRAMES = 32, 8
CASES = [("red", "square", "moves to the left"), ("green", "circle", "moves up"),
         ("blue", "triangle", "moves down"), ("yellow", "square", "moves to the right")]


@pytest.fixture(scope="module")
def videos():
    return {case: render_textured_video(*case, FRAMES, SIZE, np.random.default_rng(index))
            for index, case in enumerate(CASES)}


def _frames(video: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(video).permute(0, 3, 1, 2).double()


@pytest.mark.parametrize("case", CASES, ids=[c[1] + "-" + c[2].split()[-1] for c in CASES])
def test_warping_frame_0_by_the_true_flow_reproduces_visible_pixels(videos, case):
    video, conditions = videos[case]
    frames = _frames(video)
    warped = warp(frames[:1].expand(FRAMES, -1, -1, -1).contiguous(), torch.from_numpy(conditions).double())
    error = (warped - frames).abs().amax(1)
    visible = torch.from_numpy(conditions[:, 2] == 1)
    assert torch.equal(torch.from_numpy(conditions[0]), identity_condition(SIZE, SIZE))
    # whole-pixel sources: only the float32 grid's rounding (~1e-5 px) times a texture step: < 0.01 levels
    assert error[visible].max() < 0.01
    assert error[~visible].mean() > 5  # uncovered stripes and the shape's new pixels: warping cannot make them
    assert visible[-1].float().mean() > 0.6


def test_checks_move_with_the_shape_and_stripes_stay(videos):
    video, conditions = videos[CASES[0]]
    frames = _frames(video)[None] / 127.5 - 1
    track = shape_centroids(frames)[0]
    assert track[-1, 0] < track[0, 0] - 0.25 * SIZE  # the shape moves to the left
    mask = (frames.amax(2) - frames.amin(2) > 0.9)[0][None]  # the saturated shape pixels
    result = texture_sticking(frames, torch.from_numpy(conditions)[None], mask)
    assert result["ratio"] < 0.01  # the real clip: its checks move with the shape
    background = torch.from_numpy(conditions[:, 2] == 1) & ~mask[0]
    assert torch.equal(frames[0, -1][:, background[-1]], frames[0, 0][:, background[-1]])  # stripes stay


def test_textured_world_dataset_keeps_ground_truth(tmp_path):
    root = generate_synthetic_dataset(tmp_path / "ds", num_videos=4, frames_per_video=4, image_size=16,
                                      world="textured")
    conditions = read_ground_truth(root, "video_0000")
    assert conditions.shape == (4, 3, 16, 16)
    assert np.array_equal(conditions[0], identity_condition(16, 16).numpy())
