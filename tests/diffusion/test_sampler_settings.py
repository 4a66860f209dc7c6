"""s2dm_lightning/diffusion: the sampler's and the guidance's settings are checked before any step (sector_sampler.py, guidance.py)."""

from __future__ import annotations

import pytest
from diffusers import DDIMScheduler

from s2dm_lightning.diffusion import GuidanceSettings, check_sampler_settings, sector_sample


def _never_called(x_t, t):
    raise AssertionError("the denoiser must not run with bad settings")


@pytest.mark.parametrize("steps,eta,message", [
    (0, 0.0, r"num_inference_steps must be >= 1 and <= 1000, got 0"),
    (1001, 0.0, r"num_inference_steps must be >= 1 and <= 1000, got 1001"),
    (2, -0.1, r"eta must be >= 0, got -0.1"),
])
def test_sampler_settings_are_named(steps, eta, message):
    scheduler = DDIMScheduler(num_train_timesteps=1000)
    with pytest.raises(ValueError, match=message):
        sector_sample(_never_called, scheduler, 1, 2, (3, 4, 4), num_inference_steps=steps, eta=eta)
    with pytest.raises(ValueError, match="model.init_args." + message):
        check_sampler_settings(steps, eta, 1000, "model.init_args.")


def test_guidance_scales_below_zero_are_refused_and_explained():
    GuidanceSettings("joint", 0.5)  # a weakened condition is allowed
    with pytest.raises(ValueError, match=r"guidance scale must be >= 0, got -1.*between 0 and 1 weakens it"):
        GuidanceSettings("joint", -1)
    with pytest.raises(ValueError, match="guidance mode must be one of 'joint', 'separate'; got 'both'"):
        GuidanceSettings("both")
