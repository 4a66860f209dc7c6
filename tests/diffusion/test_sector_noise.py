"""Sector-shaped noise: shared nu and t per video, and the classifier-free dropout draws."""

import pytest
import torch

from s2dm_lightning.diffusion import (
    add_noise_to_videos,
    diffusion_target,
    sample_condition_keep,
    sample_video_noise,
    sample_video_timesteps,
)
from s2dm_lightning.models import default_noise_scheduler


def test_shared_noise_is_one_sample_per_video():
    g = torch.Generator().manual_seed(0)
    nu = sample_video_noise(3, 5, (2, 4, 4), "shared", g)
    assert nu.shape == (3, 5, 2, 4, 4)
    for v in range(3):
        for f in range(1, 5):
            assert torch.equal(nu[v, f], nu[v, 0])
    assert not torch.allclose(nu[0, 0], nu[1, 0])


def test_independent_noise_differs_between_frames():
    g = torch.Generator().manual_seed(0)
    nu = sample_video_noise(2, 4, (2, 4, 4), "independent", g)
    t = sample_video_timesteps(2, 4, 1000, "independent", g)
    assert not torch.allclose(nu[0, 0], nu[0, 1])
    assert len(set(t[0].tolist())) > 1 or len(set(t[1].tolist())) > 1


def test_shared_timesteps_are_one_per_video():
    t = sample_video_timesteps(64, 4, 1000, "shared", torch.Generator().manual_seed(1))
    assert (t == t[:, :1]).all()
    assert len(set(t[:, 0].tolist())) > 30


def test_add_noise_matches_diffusers_formula():
    scheduler = default_noise_scheduler()
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 3, 3, 4, 4, generator=g)
    nu = sample_video_noise(2, 3, (3, 4, 4), "shared", g)
    t = sample_video_timesteps(2, 3, 1000, "shared", g)
    ours = add_noise_to_videos(scheduler.alphas_cumprod, x0, nu, t)
    theirs = scheduler.add_noise(x0.flatten(0, 1), nu.flatten(0, 1), t.flatten()).view_as(x0)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["epsilon", "sample", "v_prediction"])
def test_diffusion_target_matches_diffusers(kind):
    scheduler = default_noise_scheduler()
    g = torch.Generator().manual_seed(1)
    x0, nu = torch.randn(2, 3, 3, 4, 4, generator=g), torch.randn(2, 3, 3, 4, 4, generator=g)
    t = sample_video_timesteps(2, 3, 1000, "shared", g)
    ours = diffusion_target(scheduler.alphas_cumprod, kind, x0, nu, t)
    flat = (x0.flatten(0, 1), nu.flatten(0, 1), t.flatten())
    expected = {"epsilon": nu, "sample": x0,
                "v_prediction": scheduler.get_velocity(*flat).view_as(x0)}[kind]
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="'velocity'"):
        diffusion_target(scheduler.alphas_cumprod, "velocity", x0, nu, t)


@pytest.mark.parametrize("p", [0.0, 0.1, 0.35, 1.0])
def test_condition_dropout_rate_matches_setting(p):
    keep = sample_condition_keep(40_000, p, torch.Generator().manual_seed(3))
    rate = 1.0 - keep.float().mean().item()
    # 4 standard deviations of a binomial proportion (0 for p in {0, 1}).
    assert abs(rate - p) <= 4 * (p * (1 - p) / 40_000) ** 0.5 + 1e-9


def test_condition_dropout_rejects_bad_probability():
    with pytest.raises(ValueError, match="1.5"):
        sample_condition_keep(4, 1.5)
