"""Flow fusion modes: tokens (paper), concat (spatial) and both."""

import pytest
import torch

from s2dm_lightning.flow_format import grid_to_displacement, identity_condition, warp
from s2dm_lightning.models import FlowConditioner


def test_paper_size_flow_is_exactly_one_clip_width_token_without_projection():
    conditioner = FlowConditioner("tokens", flow_size=16, text_width=768)
    assert isinstance(conditioner.project, torch.nn.Identity) and conditioner.num_tokens == 1
    flow = identity_condition(16, 16).unsqueeze(0).clone()
    flow[:, 0] += 0.25
    tokens = conditioner.tokens(flow, torch.tensor([True]))
    assert tokens.shape == (1, 1, 768)
    expected = grid_to_displacement(flow).flatten(1)  # channel-major flatten of (dx, dy, occlusion)
    torch.testing.assert_close(tokens[0, 0], expected[0])


def test_other_sizes_use_a_learned_projection_and_patches():
    conditioner = FlowConditioner("tokens", flow_size=32, text_width=384, patch_size=8)
    assert isinstance(conditioner.project, torch.nn.Linear) and conditioner.num_tokens == 16
    tokens = conditioner.tokens(identity_condition(32, 32).expand(2, 3, 32, 32), torch.tensor([True, False]))
    assert tokens.shape == (2, 16, 384)
    torch.testing.assert_close(tokens[1], conditioner.null_tokens[0])


def test_concat_channels_are_displacement_and_zero_when_dropped():
    conditioner = FlowConditioner("concat", flow_size=8, text_width=32)
    assert conditioner.tokens(identity_condition(8, 8)[None], torch.tensor([True])) is None
    flow = identity_condition(8, 8).expand(2, 3, 8, 8).clone()
    channels = conditioner.channels(flow, torch.tensor([True, False]), (16, 16))
    assert channels.shape == (2, 3, 16, 16) and conditioner.extra_in_channels == 3
    torch.testing.assert_close(channels[0, :2], torch.zeros(2, 16, 16), atol=1e-6, rtol=0)
    torch.testing.assert_close(channels[0, 2], torch.ones(16, 16))
    assert channels[1].abs().max() == 0


def test_projection_none_requires_matching_width():
    with pytest.raises(ValueError, match="768"):
        FlowConditioner("tokens", flow_size=16, text_width=384, projection="none")


def test_identity_condition_warps_to_the_same_image():
    image = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(warp(image, identity_condition(8, 8)[None]), image, atol=1e-5, rtol=0)


def test_concat_channels_measure_displacement_in_units_of_four_flow_pixels():
    conditioner = FlowConditioner("concat", flow_size=9, text_width=32)
    flow = identity_condition(9, 9)[None].clone()
    flow[:, 0] += 1.0  # grid units: 1.0 = half the width = 4 flow-map pixels at size 9
    channels = conditioner.channels(flow, torch.tensor([True]), (9, 9))
    torch.testing.assert_close(channels[0, 0], torch.ones(9, 9))
    torch.testing.assert_close(channels[0, 1], torch.zeros(9, 9), atol=1e-6, rtol=0)
