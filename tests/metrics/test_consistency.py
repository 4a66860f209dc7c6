"""Temporal-consistency metrics against hand-computed cases."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from s2dm_lightning.data.flow import FlowSettings
from s2dm_lightning.flow_format import identity_condition, warp
from s2dm_lightning.metrics import BackgroundDrift, FlowAdherence, FlowWarpingError
from s2dm_lightning.metrics.functional_consistency import (
    background_drift,
    flow_endpoint_error,
    flow_warping_error,
)


def translation_flow(num_frames: int, size: int, shifts_px: list[tuple[float, float]]) -> torch.Tensor:
    """(F, 3, size, size) conditions: frame i comes from reference pixel p + shifts_px[i] (occlusion 1)."""
    out = identity_condition(size, size).repeat(num_frames, 1, 1, 1)
    for i, (dx, dy) in enumerate(shifts_px):
        out[i, 0] += dx * 2.0 / (size - 1)
        out[i, 1] += dy * 2.0 / (size - 1)
    return out


def random_flow(num_videos: int, num_frames: int, size: int, seed: int = 0) -> torch.Tensor:
    """Identity grids plus smooth random displacements and random soft occlusion; frame 1 exact identity."""
    g = torch.Generator().manual_seed(seed)
    flow = identity_condition(size, size).repeat(num_videos, num_frames, 1, 1, 1)
    flow[:, 1:, :2] += 0.15 * torch.randn(num_videos, num_frames - 1, 2, 1, 1, generator=g)
    flow[:, 1:, :2] += 0.02 * torch.randn(num_videos, num_frames - 1, 2, size, size, generator=g)
    flow[:, 1:, 2] = torch.rand(num_videos, num_frames - 1, size, size, generator=g)
    return flow


def warped_videos(flow: torch.Tensor, size: int, seed: int = 0) -> torch.Tensor:
    """Videos whose frame i is exactly frame 1 warped by the condition of frame i."""
    b, f = flow.shape[:2]
    g = torch.Generator().manual_seed(seed)
    reference = torch.rand(b, 3, size, size, generator=g) * 1.6 - 0.8
    frames = [warp(reference, flow[:, i]) for i in range(f)]
    return torch.stack(frames, dim=1)


@pytest.mark.parametrize("flow_size", [16, 8])
def test_exactly_warped_video_has_zero_warping_error(flow_size):
    flow = random_flow(3, 5, flow_size)
    videos = warped_videos(flow, 16)
    metric = FlowWarpingError()
    metric.update(videos, flow)
    assert float(metric.compute()) == pytest.approx(0.0, abs=1e-6)


def test_warping_error_hand_computed():
    # 2 frames, identity flow; frame 2 is frame 1 + 0.2 (in [-1, 1]) = +0.1 on the [0, 1] scale, on the left half.
    flow = identity_condition(4, 4).repeat(1, 2, 1, 1, 1)
    videos = torch.zeros(1, 2, 3, 4, 4)
    videos[0, 1, :, :, :2] += 0.2
    errors, valid = flow_warping_error(videos, flow)
    assert valid.all() and float(errors) == pytest.approx(0.05, abs=1e-6)  # half the pixels differ by 0.1
    flow[0, 1, 2, :, :2] = 0.0  # the changed pixels are marked occluded: they no longer count
    errors, _ = flow_warping_error(videos, flow)
    assert float(errors) == pytest.approx(0.0, abs=1e-7)
    flow[0, 1, 2] = 0.0  # nothing visible: the frame has no value and is left out
    _, valid = flow_warping_error(videos, flow)
    assert not valid.any()


def moving_square_on_constant_background(size: int = 16, frames: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """A square moving right by 2 px a frame over a fixed background; its exact conditions."""
    g = torch.Generator().manual_seed(3)
    background = torch.rand(3, size, size, generator=g) * 2 - 1
    videos = background.repeat(1, frames, 1, 1, 1)
    flow = identity_condition(size, size).repeat(1, frames, 1, 1, 1)
    for i in range(frames):
        x0 = 4 + 2 * i
        videos[0, i, :, 6:10, x0 : x0 + 4] = torch.tensor([1.0, -1.0, 0.5]).view(3, 1, 1)
        flow[0, i, 0, 6:10, x0 : x0 + 4] -= 2 * i * 2.0 / (size - 1)  # the square came from 2i px to the left
        flow[0, i, 2, 6:10, 4 : min(8, x0)] = 0.0  # background uncovered since frame 1: not in the reference
    return videos, flow


def test_constant_background_has_zero_drift():
    videos, flow = moving_square_on_constant_background()
    metric = BackgroundDrift()
    metric.update(videos, flow)
    assert float(metric.compute()) == pytest.approx(0.0, abs=1e-7)


def test_drift_hand_computed():
    videos, flow = moving_square_on_constant_background(frames=3)
    videos[0, 2] += 0.2  # frame 3 brighter everywhere by 0.1 on the [0, 1] scale
    drift, valid = background_drift(videos.clamp(-1, 1), flow)
    assert valid.all()
    # frame 2: static pixels unchanged; frame 3: the clamp leaves 1.0 channels at 1.0, so compute exactly
    x = (videos.clamp(-1, 1) + 1) / 2
    static = torch.ones(16, 16, dtype=torch.bool)
    static[6:10, 4:12] = False  # frame 3's square (8:12, moved) and the background it uncovered (4:8)
    expected = (x[0, 2] - (moving_square_on_constant_background(frames=3)[0][0, 0].clamp(-1, 1) + 1) / 2)
    expected = expected.abs().mean(0)[static].mean()
    assert float(drift[0, 0]) == pytest.approx(0.0, abs=1e-7)
    assert float(drift[0, 1]) == pytest.approx(float(expected), abs=1e-6)
    assert float(drift[0, 1]) > 0.05


def textured_shift_video(shifts_px: list[tuple[int, int]], size: int = 32) -> torch.Tensor:
    """(1, F, 3, size, size) in [-1, 1]: windows of a smooth random texture at the given offsets."""
    rng = np.random.default_rng(0)
    texture = rng.uniform(0, 255, size=(size * 2, size * 2, 3)).astype(np.float32)
    texture = cv2.GaussianBlur(texture, (0, 0), 1.5)
    texture = (texture - texture.min()) / (texture.max() - texture.min()) * 255.0
    frames = [texture[8 + dy : 8 + dy + size, 8 + dx : 8 + dx + size] for dx, dy in shifts_px]
    video = np.stack(frames).round().astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(video).permute(0, 3, 1, 2).unsqueeze(0)


def test_estimator_epe_on_known_shift_is_small():
    shifts = [(0, 0), (1, 0), (2, 1), (3, 1), (4, 2)]
    size = 32
    video = textured_shift_video(shifts, size)
    # frame i at pixel p shows the texture at p + shift_i = reference(p + shift_i): backward flow = +shift_i
    flow = translation_flow(len(shifts), size, [(float(dx), float(dy)) for dx, dy in shifts])
    for i, (dx, dy) in enumerate(shifts):  # content that enters at the border is not in the reference
        if dx:
            flow[i, 2, :, size - dx :] = 0.0
        if dy:
            flow[i, 2, size - dy :, :] = 0.0
    metric = FlowAdherence(flow_settings=FlowSettings(flow_size=size))
    metric.update(video, flow.unsqueeze(0))
    assert float(metric.compute()) < 0.5
    still = FlowAdherence()  # the same video against a "nothing moves" condition is far off
    still.update(video, identity_condition(size, size).repeat(1, len(shifts), 1, 1, 1))
    assert float(still.compute()) > 1.0


def test_endpoint_error_hand_computed():
    target = translation_flow(2, 9, [(0.0, 0.0), (0.0, 0.0)]).unsqueeze(0)
    estimated = translation_flow(2, 9, [(0.0, 0.0), (3.0, 4.0)]).unsqueeze(0)
    epe, valid = flow_endpoint_error(estimated, target)
    assert valid.all() and float(epe) == pytest.approx(5.0, abs=1e-5)


@pytest.mark.parametrize("make", [FlowWarpingError, BackgroundDrift, FlowAdherence])
def test_streaming_equals_one_batch_and_merge(make):
    flow = random_flow(4, 4, 16, seed=1)
    videos = (warped_videos(flow, 16, seed=2) + 0.1 * torch.randn(4, 4, 3, 16, 16)).clamp(-1, 1)
    whole, streamed, first, second = make(), make(), make(), make()
    whole.update(videos, flow)
    for i in range(4):
        streamed.update(videos[i : i + 1], flow[i : i + 1])
    first.update(videos[:1], flow[:1])
    second.update(videos[1:], flow[1:])
    first.merge_state(second)  # what the summed states do across DDP ranks
    expected = float(whole.compute())
    assert float(streamed.compute()) == pytest.approx(expected, rel=1e-9)
    assert float(first.compute()) == pytest.approx(expected, rel=1e-9)
    assert int(whole.num_videos) == 4


def test_wrong_shapes_give_clear_errors():
    metric = FlowWarpingError()
    with pytest.raises(ValueError, match=r"\(B, F, 3, H, W\)"):
        metric.update(torch.zeros(2, 3, 8, 8), torch.zeros(2, 2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, F, 3, h, w\)"):
        metric.update(torch.zeros(2, 2, 3, 8, 8), torch.zeros(2, 2, 2, 8, 8))
    with pytest.raises(ValueError, match="differ in"):
        metric.update(torch.zeros(2, 3, 3, 8, 8), torch.zeros(2, 2, 3, 8, 8))
    with pytest.raises(ValueError, match="at least 2 frames"):
        metric.update(torch.zeros(2, 1, 3, 8, 8), torch.zeros(2, 1, 3, 8, 8))
    with pytest.raises(ValueError, match="flow_size"):
        FlowAdherence(flow_settings=FlowSettings(flow_size=16)).update(
            torch.zeros(1, 2, 3, 8, 8), identity_condition(8, 8).repeat(1, 2, 1, 1, 1)
        )
    with pytest.raises(ValueError, match="value_range"):
        BackgroundDrift(value_range=(1.0, 0.0))


def test_compute_without_frames_is_nan_with_warning():
    with pytest.warns(UserWarning, match="no frame"):
        assert torch.isnan(FlowWarpingError().compute())
