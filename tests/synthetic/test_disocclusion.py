"""The disocclusion world: its ground-truth flow explains exactly the pixels frame 0 shows, and no others."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from s2dm_lightning.flow_format import grid_to_displacement, identity_condition, warp
from s2dm_lightning.synthetic.disocclusion import (
    disocclusion_caption,
    render_disocclusion_video,
    transforms_for,
)
from s2dm_lightning.synthetic.motion import caption_color, caption_direction, shape_centroids
from s2dm_lightning.synthetic.shapes import COLORS
from s2dm_lightning.synthetic.world import render_video

SIZE, FRAMES = 32, 16
CASES = [
    ("red", "square", "moves to the left", "rotating"),
    ("green", "circle", "moves up", "growing"),
    ("blue", "triangle", "moves down", "shrinking"),
    ("yellow", "triangle", "moves to the right", "rotating"),
]


@pytest.fixture(scope="module")
def videos():
    return {case: render_disocclusion_video(*case, FRAMES, SIZE, np.random.default_rng(index))
            for index, case in enumerate(CASES)}


def _warp_error(video: np.ndarray, conditions: np.ndarray) -> torch.Tensor:
    """(F, H, W) max-over-channels |warp(frame 0, condition t) - frame t| in uint8 levels."""
    frames = torch.from_numpy(video).permute(0, 3, 1, 2).double()
    warped = warp(frames[:1].expand(len(frames), -1, -1, -1).contiguous(), torch.from_numpy(conditions).double())
    return (warped - frames).abs().amax(1)


@pytest.mark.parametrize("case", CASES, ids=[c[3] + "-" + c[1] for c in CASES])
def test_warping_frame_0_explains_visible_pixels_only(videos, case):
    video, conditions = videos[case]
    assert video.shape == (FRAMES, SIZE, SIZE, 3) and conditions.shape == (FRAMES, 3, SIZE, SIZE)
    error, visible = _warp_error(video, conditions), torch.from_numpy(conditions[:, 2] == 1)
    assert set(np.unique(conditions[:, 2])) <= {0.0, 1.0}
    # Visible pixels: background sources on whole pixels, shape sources inside its flat colour, so the
    # only error is the grid's float32 rounding (~1e-5 px) times a texture step (< 100 levels): < 0.01.
    assert error[visible].max() < 0.01
    # Invisible pixels are the ones warping cannot make: panned-in or uncovered texture, the entering shape.
    assert error[~visible].mean() > 20
    assert (error[~visible] > 5).float().mean() > 0.8
    # A large part of the late frames is new: warping frame 0 is far from an upper bound here.
    assert (~visible[-1]).float().mean() > 0.25


def test_frame_0_condition_is_the_identity(videos):
    for _, conditions in videos.values():
        assert np.array_equal(conditions[0], identity_condition(SIZE, SIZE).numpy())


def test_background_pans_by_whole_pixels_and_is_textured(videos):
    for video, conditions in videos.values():
        displacement = grid_to_displacement(torch.from_numpy(conditions))[:, :2].numpy() * (SIZE - 1) / 2
        visible = conditions[:, 2] == 1
        last = displacement[-1][:, visible[-1]]  # (2, n): background dominates the visible pixels
        pan = np.median(last, axis=1)
        assert np.abs(pan - np.round(pan)).max() < 1e-4 and 0.2 * SIZE <= np.linalg.norm(pan) <= 0.45 * SIZE
        # High-frequency texture, unlike the default world's smooth gradient (neighbours differ < 3 levels).
        frame = video[0].astype(float)
        assert np.abs(np.diff(frame, axis=1)).mean() > 8
    smooth = render_video("red", "square", "moves up", 2, SIZE, np.random.default_rng(0)).astype(float)[0]
    assert np.abs(np.diff(smooth[:, :8], axis=1)).mean() < 3


def test_a_second_shape_enters_after_frame_0(videos):
    for (color, *_), (video, conditions) in videos.items():
        areas = {other: _area(video, other) for other in COLORS if other != color}
        entering = [other for other, area in areas.items() if area.any()]
        assert len(entering) == 1, f"one other colour appears, got {entering}"
        assert areas[entering[0]][0] == 0 and areas[entering[0]][-1] > 10, "absent from frame 0, in view at the end"
        # Its pixels are never visible in frame 0.
        on_it = np.abs(video[-1].astype(int) - np.array(COLORS[entering[0]])).max(-1) <= 2
        assert (conditions[-1, 2][on_it] == 0).all()


def test_main_shape_centroid_ignores_the_entering_shape(videos):
    (color, _, motion, _), (video, _) = CASES[0], videos[CASES[0]]
    frames = torch.from_numpy(video).permute(0, 3, 1, 2)[None].float() / 127.5 - 1
    track = shape_centroids(frames, colors=[color])[0]
    assert track[0].tolist() == pytest.approx([SIZE / 2 - 0.5] * 2, abs=0.5)
    assert motion == "moves to the left" and track[-1, 0] < track[0, 0] - 0.27 * SIZE
    assert abs(track[-1, 1] - track[0, 1]) < 1.0  # the other shape, wherever it enters, pulls nothing


def _area(video: np.ndarray, color: str) -> np.ndarray:
    """(F,) pixels of exactly that colour (up to rounding) per frame."""
    return (np.abs(video.astype(int) - np.array(COLORS[color])).max(-1) <= 2).sum((1, 2))


def test_shape_grows_shrinks_or_turns_as_captioned(videos):
    for (color, shape, motion, transform), (video, conditions) in videos.items():
        # The flow on the shape's visible pixels is a similarity, source = A p + b with A = R(-angle) / scale.
        on_shape = (np.abs(video[-1].astype(int) - np.array(COLORS[color])).max(-1) == 0) & (conditions[-1, 2] == 1)
        ys, xs = np.nonzero(on_shape)
        points = np.stack([xs, ys, np.ones_like(xs)], axis=1).astype(float)
        source = (conditions[-1, :2, ys, xs] + 1) * (SIZE - 1) / 2  # (n, 2) pixel indices in frame 0
        fit, *_ = np.linalg.lstsq(points, source, rcond=None)
        matrix = fit[:2].T
        assert len(xs) >= 5 and np.abs(points @ fit - source).max() < 1e-3
        scale = 1 / np.sqrt(abs(np.linalg.det(matrix)))
        angle = abs(np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0])))
        if transform == "rotating":
            assert scale == pytest.approx(1.0, abs=1e-3) and 60 - 1e-3 <= angle <= 90 + 1e-3
        else:
            assert scale == pytest.approx({"growing": 1.6, "shrinking": 0.6}[transform], abs=1e-3) and angle < 1e-3
        caption = disocclusion_caption(color, shape, motion, transform)
        assert caption_direction(caption) == motion and caption_color(caption) == color


def test_circles_do_not_rotate_and_unknown_transforms_are_refused():
    assert transforms_for("circle") == ("growing", "shrinking")
    assert "rotating" in transforms_for("square")
    with pytest.raises(ValueError, match="'rotating' is not one of"):
        render_disocclusion_video("red", "circle", "moves up", "rotating", 4, 16, np.random.default_rng(0))


def test_deterministic_given_the_generator():
    first = render_disocclusion_video(*CASES[0], 4, 16, np.random.default_rng(7))
    second = render_disocclusion_video(*CASES[0], 4, 16, np.random.default_rng(7))
    other = render_disocclusion_video(*CASES[0], 4, 16, np.random.default_rng(8))
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert not np.array_equal(first[0], other[0])
