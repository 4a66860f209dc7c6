"""Classifier-free guidance combinations."""

import pytest
import torch

from s2dm_lightning.diffusion import GuidanceSettings, combine_guidance, guidance_branches


def test_joint_guidance_is_paper_formula():
    settings = GuidanceSettings(mode="joint", scale=7.5)
    assert guidance_branches(settings) == [(True, True), (False, False)]
    cond, uncond = torch.full((2,), 3.0), torch.full((2,), 1.0)
    assert torch.allclose(combine_guidance([cond, uncond], settings), torch.full((2,), 1.0 + 7.5 * 2.0))


def test_scale_one_needs_only_the_conditional_branch():
    settings = GuidanceSettings(mode="joint", scale=1.0)
    assert guidance_branches(settings) == [(True, True)]
    x = torch.randn(3)
    assert torch.equal(combine_guidance([x], settings), x)


def test_separate_guidance_uses_text_and_flow_scales():
    settings = GuidanceSettings(mode="separate", text_scale=2.0, flow_scale=3.0)
    assert guidance_branches(settings) == [(True, True), (True, False), (False, False)]
    cond, text_only, uncond = torch.tensor([5.0]), torch.tensor([2.0]), torch.tensor([1.0])
    expected = 1.0 + 2.0 * (2.0 - 1.0) + 3.0 * (5.0 - 2.0)
    assert combine_guidance([cond, text_only, uncond], settings).item() == pytest.approx(expected)


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="bogus"):
        GuidanceSettings(mode="bogus")
