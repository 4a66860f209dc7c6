"""PSNR of image-to-video outputs, split by the occlusion map, against hand-computed values."""

import math

import pytest
import torch

from s2dm_lightning.flow_format import identity_condition
from s2dm_lightning.metrics.functional_reconstruction import image_to_video_psnr, masked_psnr

B, F, H, W = 2, 3, 4, 6


def _conditions(occluded_columns: int) -> torch.Tensor:
    """Identity flows whose occlusion map marks the first ``occluded_columns`` columns of frames 2.. occluded."""
    flow = identity_condition(H, W).repeat(B, F, 1, 1, 1)
    flow[:, 1:, 2, :, :occluded_columns] = 0.0
    return flow


def test_psnr_of_a_constant_error_is_its_closed_form() -> None:
    real = torch.zeros(B, F, 3, H, W)
    generated = real + 0.1  # MSE 0.01 on a range of 2: 10 log10(4 / 0.01) = 26.02 dB
    psnr = masked_psnr(generated, real, torch.ones(B, F, H, W, dtype=torch.bool))
    torch.testing.assert_close(psnr, torch.full((B,), 10 * math.log10(400), dtype=torch.float64))


def test_visible_and_occluded_pixels_are_scored_apart() -> None:
    real = torch.zeros(B, F, 3, H, W)
    generated = real.clone()
    generated[:, 1:, :, :, :2] = 0.5  # wrong only where frames 2.. are occluded
    generated[:, 1:, :, :, 2:] = 0.01
    generated[:, 0] = 0.2
    psnr = image_to_video_psnr(generated, real, _conditions(occluded_columns=2))
    expected = {"first_frame": 10 * math.log10(4 / 0.04), "visible": 10 * math.log10(4 / 1e-4),
                "occluded": 10 * math.log10(4 / 0.25), "occluded_fraction": 2 / W}
    for name, value in expected.items():
        torch.testing.assert_close(psnr[name], torch.full((B,), value, dtype=torch.float64), rtol=1e-5, atol=1e-6)


def test_a_world_without_occlusions_has_no_occluded_psnr() -> None:
    real = torch.zeros(B, F, 3, H, W)
    psnr = image_to_video_psnr(real + 0.1, real, _conditions(occluded_columns=0))
    assert torch.isnan(psnr["occluded"]).all() and torch.isfinite(psnr["visible"]).all()
    assert (psnr["occluded_fraction"] == 0).all()


def test_occlusion_maps_of_another_size_are_resized() -> None:
    real = torch.zeros(B, F, 3, 2 * H, 2 * W)
    generated = real.clone()
    generated[:, 1:, :, :, : W] = 1.0  # the left half, where the (half-size) map says occluded
    flow = _conditions(occluded_columns=W // 2)
    psnr = image_to_video_psnr(generated, real, flow)
    assert torch.isinf(psnr["visible"]).all()  # no error on visible pixels
    assert psnr["occluded"].lt(10).all()


def test_mismatched_shapes_are_refused() -> None:
    real = torch.zeros(B, F, 3, H, W)
    with pytest.raises(ValueError, match="differ in shape"):
        masked_psnr(real[:, :2], real, torch.ones(B, F, H, W, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):
        masked_psnr(real, real, torch.ones(B, F, H, dtype=torch.bool))
    with pytest.raises(ValueError, match="conditions"):
        image_to_video_psnr(real, real, _conditions(0)[:, :2])
