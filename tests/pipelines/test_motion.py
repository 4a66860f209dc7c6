"""Motion sources: a formula, a driving video of any size and length, the caption (stage one)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from s2dm_lightning.flow_format import identity_condition, identity_grid, warp
from s2dm_lightning.pipelines import TwoStageTextToVideo
from s2dm_lightning.pipelines.motion import (
    flows_from_caption,
    flows_from_video,
    parametric_flows,
    rotate_flows,
    translate_flows,
    zoom_flows,
)
from s2dm_lightning.pipelines.s2dm_pipeline import S2DMPipeline
from tests.pipelines.conftest import SIZE, tiny_flow_generator, tiny_s2dm


def _pattern(size: int) -> torch.Tensor:
    return torch.rand(1, 1, size, size, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(("dx", "dy"), [(3.0, -2.0), (-4.0, 1.0)])
def test_translate_moves_a_pattern_by_dx_dy_after_grid_sample(dx, dy):
    size, frames = 12, 5
    flows = translate_flows(dx, dy, size, num_frames=frames)
    assert flows.shape == (frames, 3, size, size)
    assert torch.equal(flows[0], identity_condition(size, size))
    pattern = _pattern(size)
    moved = warp(pattern, flows[-1:])[0, 0]
    x, y = int(dx), int(dy)
    inside = moved[max(0, y):size + min(0, y), max(0, x):size + min(0, x)]
    source = pattern[0, 0, max(0, -y):size + min(0, -y), max(0, -x):size + min(0, -x)]
    torch.testing.assert_close(inside, source, atol=1e-5, rtol=0)
    # frame i moves by i / (F - 1) of (dx, dy): the grid is the identity minus that shift in grid units
    shift = torch.tensor([dx, dy]).view(2, 1, 1) * 2 / (size - 1)
    for i in range(frames):
        torch.testing.assert_close(flows[i, :2], identity_grid(size, size) - shift * i / (frames - 1))
    # what enters the frame was outside the reference: occluded (0), the rest visible (1)
    occlusion = flows[-1, 2]
    assert occlusion.sum() == (size - abs(x)) * (size - abs(y))
    assert occlusion[max(0, y):size + min(0, y), max(0, x):size + min(0, x)].min() == 1


def test_translate_pixels_of_the_generated_frame_are_scaled_to_the_flow_map():
    # 4 px on a 29-px frame = 1 px on the 8-px flow map ((8 - 1) / (29 - 1) = 1 / 4, align_corners)
    torch.testing.assert_close(translate_flows(4.0, 0.0, 8, 2, frame_size=29), translate_flows(1.0, 0.0, 8, 2))


def test_zoom_scales_about_the_centre_by_its_closed_form():
    size, frames, factor = 9, 4, 2.0
    flows = zoom_flows(factor, size, frames)
    for i in range(frames):
        scale = 1 + (factor - 1) * i / (frames - 1)
        torch.testing.assert_close(flows[i, :2], identity_grid(size, size) / scale)
    # a dot 2 px right of the centre appears 4 px right of it after a 2x zoom
    dot = torch.zeros(1, 1, size, size)
    dot[0, 0, 4, 6] = 1.0
    moved = warp(dot, flows[-1:])[0, 0]
    assert moved[4, 8] == pytest.approx(1.0) and moved.argmax() == 4 * size + 8
    assert torch.equal(flows[:, 2], torch.ones(frames, size, size)), "zooming in stays inside the reference"
    # shrinking to half: only the centre 5 x 5 of frame F comes from inside the reference (|2 u| <= 4 px)
    assert zoom_flows(0.5, size, frames)[-1, 2].sum() == 25


def test_rotate_turns_counter_clockwise_on_screen_by_its_closed_form():
    size, frames = 9, 3
    flows = rotate_flows(90.0, size, frames)
    centre = (size - 1) / 2
    grid = identity_grid(size, size)
    for i, angle in enumerate(math.radians(90.0) * torch.arange(frames) / (frames - 1)):
        c, s = math.cos(angle), math.sin(angle)
        expected = torch.stack([c * grid[0] - s * grid[1], s * grid[0] + c * grid[1]])
        torch.testing.assert_close(flows[i, :2], expected)
    dot = torch.zeros(1, 1, size, size)
    dot[0, 0, int(centre), int(centre) + 3] = 1.0  # 3 px right of the centre ...
    moved = warp(dot, flows[-1:])[0, 0]
    assert moved[int(centre) - 3, int(centre)] == pytest.approx(1.0, abs=1e-5)  # ... ends 3 px above it
    corners = flows[1, 2, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert torch.equal(corners, torch.zeros(4)), "a corner turned by 45 degrees comes from outside the frame"


def test_parametric_strings_give_the_same_flows_as_the_functions():
    assert torch.equal(parametric_flows("translate:2,-1", 8, 4), translate_flows(2, -1, 8, 4))
    assert torch.equal(parametric_flows("zoom:1.5", 8, 4), zoom_flows(1.5, 8, 4))
    assert torch.equal(parametric_flows("rotate:30", 8, 4), rotate_flows(30, 8, 4))
    with pytest.raises(ValueError, match="translate takes 2"):
        parametric_flows("translate:2", 8)


def _moving_square_video(folder, height: int, width: int, length: int):
    folder.mkdir()
    for i in range(length):
        frame = np.full((height, width, 3), 40, np.uint8)
        frame[:, :, 2] = np.linspace(0, 120, width, dtype=np.uint8)  # a gradient so nothing is flat
        top, left = height // 2 - 8, width // 2 - 8 + i
        frame[top:top + 16, left:left + 16] = (230, 60, 60)
        cv2.imwrite(str(folder / f"{i:04d}.png"), frame[:, :, ::-1])
    return folder


def test_a_driving_video_of_another_size_and_length_gives_16_flows_at_the_flow_size(tmp_path):
    video = _moving_square_video(tmp_path / "driving", height=72, width=120, length=23)
    flows, frames = flows_from_video(video, flow_size=SIZE)
    assert flows.shape == (16, 3, SIZE, SIZE) and flows.dtype == torch.float32
    assert torch.equal(flows[0], identity_condition(SIZE, SIZE))
    assert frames.shape == (16, 72, 72, 3), "the largest centred square of each picked frame"
    # frames picked as in evaluation: floor(i * 23 / 16), the last one 21 px right of the first
    # -> in the square's area the grid points left, back to where the content was in frame 0
    displacement = flows[-1, 0] - identity_grid(SIZE, SIZE)[0]
    assert displacement[SIZE // 2 - 1:SIZE // 2 + 1, SIZE // 2:SIZE // 2 + 2].mean() < -0.1


def test_caption_flows_are_the_two_stage_routes_flows():
    s2dm, flow_generator = tiny_s2dm().eval(), tiny_flow_generator().eval()
    pipe = S2DMPipeline.from_s2dm(s2dm)
    pipe.set_progress_bar_config(disable=True)
    prompts = ["a red square moves up", "a blue circle moves left"]
    flows = flows_from_caption(pipe, flow_generator, prompts, seed=7, num_frames=4)
    assert flows.shape == (2, 4, 3, SIZE, SIZE)
    assert torch.equal(flows[:, 0], identity_condition(SIZE, SIZE).expand(2, -1, -1, -1))
    two_stage = TwoStageTextToVideo(s2dm, flow_generator)(prompts, seed=7, num_frames=4)
    torch.testing.assert_close(flows, two_stage.flows, atol=1e-5, rtol=0)  # batched alike; 1e-5: float32 rounding
    videos = pipe(prompts, flows, generator=[torch.Generator().manual_seed(7 + k) for k in range(2)],
                  output_type="pt").frames
    torch.testing.assert_close(videos, (two_stage.frames + 1) / 2, atol=1e-5, rtol=0)
