from __future__ import annotations

import numpy as np
import pytest
import torch

from s2dm_lightning.data.flow import (
    FlowSettings,
    estimate_flow_sequence,
    estimate_pair,
    estimate_video_flows,
    flow_settings_for,
)
from s2dm_lightning.flow_format import grid_to_displacement, identity_condition, warp
from tests.data.conftest import moving_texture_video, textured

SIZE = 64
INNER = (slice(8, -8), slice(8, -8))


def _shifted_pair(dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
    """reference and frame with frame(p) = reference(p - (dx, dy)): content moved by (dx, dy)."""
    big = textured(SIZE + 6, SIZE + 6, seed=3)
    reference = big[3 : 3 + SIZE, 3 : 3 + SIZE]
    frame = big[3 - dy : 3 - dy + SIZE, 3 - dx : 3 - dx + SIZE]
    return reference, frame


def _pixels(condition: torch.Tensor) -> torch.Tensor:
    """Grid displacement (2, h, w) in pixels of a SIZE-wide image (align_corners=True units)."""
    return grid_to_displacement(condition)[:2] * (SIZE - 1) / 2


@pytest.mark.parametrize("dx,dy", [(3, 0), (-3, 0), (0, 2)])
def test_recovers_a_known_shift_with_the_right_sign(dx, dy):
    reference, frame = _shifted_pair(dx, dy)
    grid, occlusion = estimate_pair(reference, frame, FlowSettings(flow_size=SIZE))
    assert grid.shape == (2, SIZE, SIZE) and occlusion.shape == (1, SIZE, SIZE)
    condition = torch.cat([grid, occlusion])
    displacement = _pixels(condition)
    # Content moved by +dx, so frame pixel p comes from reference p - dx: the grid points back.
    assert (displacement[0][INNER] + dx).abs().max() < 0.5
    assert (displacement[1][INNER] + dy).abs().max() < 0.5
    ref_t = torch.from_numpy(reference).float()[None, None] / 255
    frame_t = torch.from_numpy(frame).float()[None, None] / 255
    warped = warp(ref_t, condition[None])
    warp_error = (warped - frame_t)[..., 8:-8, 8:-8].abs().mean()
    still_error = (ref_t - frame_t)[..., 8:-8, 8:-8].abs().mean()
    assert warp_error < 0.01 < still_error / 5  # warp(reference, grid) ~= frame


def test_occlusion_pure_translation_and_entering_content():
    reference, frame = _shifted_pair(3, 0)
    _, occlusion = estimate_pair(reference, frame, FlowSettings(flow_size=SIZE))
    assert occlusion.min() >= 0 and occlusion.max() <= 1
    assert occlusion[0][INNER].mean() > 0.99
    # The 3 left columns of the frame are new content, absent from the reference.
    assert occlusion[0, :, :3].mean() < 0.2


def test_occlusion_drops_where_background_is_disoccluded():
    background = textured(SIZE, SIZE, seed=1)
    patch = textured(20, 20, seed=2) // 2 + 128
    reference, frame = background.copy(), background.copy()
    reference[22:42, 16:36] = patch
    frame[22:42, 21:41] = patch  # the square moved 5 px right
    grid, occlusion = estimate_pair(reference, frame, FlowSettings(flow_size=SIZE))
    # Background uncovered behind the square: not visible in the reference.
    assert occlusion[0, 22:42, 16:21].mean() < 0.5
    assert occlusion[0, 24:40, 25:39].mean() > 0.9  # the square itself
    assert occlusion[0, :16].mean() > 0.95  # static background
    displacement = _pixels(torch.cat([grid, occlusion]))
    assert (displacement[0, 26:38, 27:37] + 5).abs().mean() < 0.5


def test_sequence_frame_zero_is_exact_identity_and_motion_accumulates():
    video = moving_texture_video(num_frames=12, size=48, step=1)  # frame i = reference moved by -i px in x
    settings = FlowSettings(flow_size=24)
    flow = estimate_flow_sequence(video, settings)
    assert flow.shape == (12, 3, 24, 24) and flow.dtype == torch.float32
    assert torch.equal(flow[0], identity_condition(24, 24))
    dx = grid_to_displacement(flow)[:, 0] * (48 - 1) / 2  # in pixels of the 48 px video
    inner = dx[:, 4:-4, 2:-8]  # the right border holds content entering the frame
    for i in (1, 5, 11):
        assert (inner[i].median() - i).abs() < 0.5, (i, inner[i].median())
    assert flow[11, 2, 4:-4, 2:-8].mean() > 0.9
    assert flow[11, 2, :, -3:].mean() < 0.5  # content entering on the right


def test_sequence_downscales_to_flow_size_keeping_units():
    reference, frame = _shifted_pair(3, 0)
    video = np.stack([np.repeat(f[..., None], 3, axis=-1) for f in (reference, frame)])
    small = estimate_flow_sequence(video, FlowSettings(flow_size=16))
    shift = grid_to_displacement(small)[1, 0, 3:-3, 3:-3]
    # Normalised units do not depend on the stored resolution: -3 px of 64 = -3 * 2 / 63.
    assert (shift.mean() + 3 * 2 / (SIZE - 1)).abs() < 0.01


def test_settings_validation_and_dict():
    with pytest.raises(ValueError, match="dis_preset"):
        FlowSettings(dis_preset="slow")
    with pytest.raises(ValueError, match="estimator"):
        FlowSettings(estimator="raft")
    assert FlowSettings().to_dict()["flow_size"] == 32
    reference, frame = _shifted_pair(2, 0)
    grid, _ = estimate_pair(reference, frame, FlowSettings(estimator="opencv-farneback", flow_size=SIZE))
    assert (_pixels(torch.cat([grid, grid[:1]]))[0][INNER].median() + 2).abs() < 0.5


def test_image_sizes_can_change_within_a_process():
    # Regression: one cached DIS object reused on smaller images segfaulted.
    for size in (64, 32, 48):
        image = textured(size, size, seed=size)
        grid, _ = estimate_pair(image, np.roll(image, 1, axis=1), FlowSettings(flow_size=8))
        assert torch.isfinite(grid).all()


def test_estimate_does_not_depend_on_what_was_estimated_before():
    # OpenCV's DIS keeps state between calls with an initial flow; a reused object made this fail.
    from s2dm_lightning.data.flow import FlowSettings, estimate_flow_sequence

    rng = np.random.default_rng(0)
    texture = (rng.random((40, 40, 3)) * 255).astype(np.uint8)
    clip = np.stack([np.roll(texture, shift, axis=1) for shift in range(4)])
    other = np.stack([np.roll(texture, -2 * shift, axis=0) for shift in range(4)])
    settings = FlowSettings(flow_size=8)
    first = estimate_flow_sequence(clip, settings)
    estimate_flow_sequence(other, settings)
    assert torch.equal(estimate_flow_sequence(clip, settings), first)


def test_video_batch_flows_are_each_clips_sequence_and_settings_follow_the_maps():
    clips = np.stack([moving_texture_video(4, 24, step=1), moving_texture_video(4, 24, step=2, seed=1)])
    settings = FlowSettings(flow_size=12)
    flows = estimate_video_flows(clips, settings)
    assert flows.shape == (2, 4, 3, 12, 12)
    for clip, flow in zip(clips, flows, strict=True):  # one clip at a time, the same OpenCV calls
        assert torch.equal(flow, estimate_flow_sequence(clip, settings))
    with pytest.raises(ValueError, match=r"\(B, L, H, W, 3\)"):
        estimate_video_flows(clips[0], settings)
    assert flow_settings_for(flows, None) == FlowSettings(flow_size=12)
    assert flow_settings_for(flows, settings) is settings
    with pytest.raises(ValueError, match="flow_settings.flow_size=16"):
        flow_settings_for(flows, FlowSettings(flow_size=16))
    with pytest.raises(ValueError, match="square"):
        flow_settings_for(flows[..., :6], None)


def test_gray_sequence_prepares_frame_zero_once_without_changing_the_flows():
    # estimate_gray_sequence prepares frame 0 (float copy, pixel grid) once for all pairs; pair by pair
    # through the public estimate_raw_pair (which prepares it again each time) must give the same
    # conditions. Same operations on the same arrays, nothing batched: equal to float32 rounding.
    from s2dm_lightning.data.flow import (
        PairFlows,
        estimate_gray_sequence,
        estimate_raw_pair,
        flows_to_condition,
    )

    settings = FlowSettings(flow_size=8)
    gray = moving_texture_video(num_frames=5, size=48, step=2)[..., 0]
    sequence = estimate_gray_sequence(np.ascontiguousarray(gray), settings)
    previous: PairFlows | None = None
    for i in range(1, len(gray)):
        flows = estimate_raw_pair(gray[0], gray[i], settings, previous)
        grid, occlusion = flows_to_condition(flows, settings)
        assert torch.allclose(sequence[i, :2], grid, atol=1e-6) and torch.allclose(sequence[i, 2:], occlusion, atol=1e-6)
        previous = flows
    assert torch.equal(sequence[0], identity_condition(8, 8))
    assert (sequence[-1, 0] - identity_condition(8, 8)[0]).abs().mean() > 0.1  # it saw the 8 px pan
