"""Noise carried along the condition (``warped`` / ``partial``): exactness and per-pixel N(0, 1)."""

import math

import pytest
import torch
from diffusers import DDIMScheduler

from s2dm_lightning.diffusion import parse_noise_sharing, sample_video_noise
from s2dm_lightning.diffusion.noise_transport import degrade_noise, transport_video_noise
from s2dm_lightning.diffusion.sector_sampler import sector_sample
from s2dm_lightning.flow_format import affine_condition, identity_condition

H = W = 16


def _affine(matrices: list[list[list[float]]], size: int = H) -> torch.Tensor:
    """Conditions (F, 3, size, size): frame 1 the identity, then the given source-from-target maps."""
    maps = [[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], *matrices]
    return affine_condition(torch.tensor(maps), size, size)


def _translation(dx: int, dy: int) -> torch.Tensor:
    return _affine([[[1.0, 0.0, dx], [0.0, 1.0, dy]]])


def test_identity_condition_is_shared_noise_bit_for_bit_and_draws_nothing_more() -> None:
    condition = identity_condition(H, W).expand(2, 4, -1, -1, -1)
    g_shared, g_warped = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    shared = sample_video_noise(2, 4, (3, H, W), "shared", g_shared)
    warped = sample_video_noise(2, 4, (3, H, W), "warped", g_warped, condition=condition)
    assert torch.equal(warped, shared)
    assert torch.equal(torch.randn(5, generator=g_warped), torch.randn(5, generator=g_shared))


def test_integer_translation_moves_visible_noise_exactly() -> None:
    dx, dy = 3, -2
    condition = _translation(dx, dy)[None]
    noise = sample_video_noise(1, 2, (2, H, W), "warped", torch.Generator().manual_seed(0), condition=condition)
    base, moved = noise[0, 0], noise[0, 1]
    visible = condition[0, 1, 2] > 0.5
    ys, xs = torch.nonzero(visible, as_tuple=True)
    assert len(ys) == (H - abs(dy)) * (W - abs(dx))
    assert torch.equal(moved[:, ys, xs], base[:, ys + dy, xs + dx])
    hidden = ~visible  # fresh noise where the source is outside frame 1, not a copy of the border
    assert not torch.equal(moved[:, hidden], base[:, hidden.nonzero()[:, 0].clamp(0, H - 1), W - 1])


N_DRAWS = 3000
# Over N draws the per-pixel sample mean has standard error 1/sqrt(N) and the sample variance
# sqrt(2/N) (Gaussian); 5 standard errors over 2 x 256 pixels leave a false alarm chance ~3e-4
# (the seed is fixed, so the test is deterministic; the tolerance says what a real bug must exceed).
MEAN_TOL, VAR_TOL = 5 / math.sqrt(N_DRAWS), 5 * math.sqrt(2 / N_DRAWS)
ZOOM_IN = [[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]  # each frame-1 pixel covers about 2 x 2 pixels of frame 2
c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
ROTATION = [[c, -s, 0.0], [s, c, 0.0]]


@pytest.mark.parametrize("motion", [ZOOM_IN, ROTATION], ids=["zoom", "rotation"])
def test_transported_noise_is_standard_gaussian_per_pixel(motion) -> None:
    condition = _affine([motion])[None].expand(N_DRAWS, -1, -1, -1, -1)
    g = torch.Generator().manual_seed(1)
    base = torch.randn(N_DRAWS, 1, H, W, generator=g)
    frames = transport_video_noise(base, condition, g)[:, 1, 0]  # (N, H, W), frame 2
    assert (frames.mean(0).abs() < MEAN_TOL).all()
    assert ((frames.var(0) - 1).abs() < VAR_TOL).all()
    # neighbours that share one source must still be uncorrelated: E[x y] has standard error 1/sqrt(N)
    assert ((frames[:, :, 1:] * frames[:, :, :-1]).mean(0).abs() < MEAN_TOL).all()
    if motion is ZOOM_IN:  # and the split really happened: frame 2 follows frame 1 (corr 1/sqrt(k) > 0)
        centre = (base[:, 0, H // 2, W // 2] * frames[:, H // 2, W // 2]).mean()
        assert 0.3 < centre < 0.8


def test_partial_with_a_zero_is_warped_and_with_a_one_forgets_frame_one() -> None:
    condition = _translation(1, 0)[None].expand(N_DRAWS, -1, -1, -1, -1)
    warped = sample_video_noise(N_DRAWS, 2, (1, H, W), "warped", torch.Generator().manual_seed(2), condition=condition)
    zero = sample_video_noise(N_DRAWS, 2, (1, H, W), "partial:0", torch.Generator().manual_seed(2),
                              condition=condition)
    assert torch.equal(zero, warped)
    one = sample_video_noise(N_DRAWS, 2, (1, H, W), "partial:1", torch.Generator().manual_seed(2),
                             condition=condition)
    # independent in distribution: each frame N(0, 1) per pixel, frame 2 uncorrelated with frame 1 where
    # warped noise copies it (correlation 1 there)
    assert ((one.var(0) - 1).abs() < VAR_TOL).all()
    assert ((one[:, 1, 0, :, :-1] * one[:, 0, 0, :, 1:]).mean(0).abs() < MEAN_TOL).all()
    assert torch.equal(warped[:, 1, 0, :, :-1], warped[:, 0, 0, :, 1:])


def test_partial_drawn_per_video_keeps_unit_variance_and_mixes() -> None:
    warped = torch.randn(N_DRAWS, 2, 1, 4, 4, generator=torch.Generator().manual_seed(4))
    warped[:, 1] = warped[:, 0]
    mixed = degrade_noise(warped, None, torch.Generator().manual_seed(5))
    assert ((mixed.var(0) - 1).abs() < VAR_TOL).all()
    # E[(1 - a)] over a ~ U[0, 1] is 1/2: the correlation of frames 1 and 2 under a drawn degradation
    assert abs((mixed[:, 0] * mixed[:, 1]).mean() - 0.5) < 0.05


@pytest.mark.parametrize("mode", ["partial:1.5", "partial:x", "warped:0.5", "moving"])
def test_bad_noise_sharing_names_the_key_and_value(mode: str) -> None:
    with pytest.raises(ValueError, match="model.noise_sharing") as error:
        parse_noise_sharing(mode, "model.noise_sharing")
    assert repr(mode) in str(error.value)


def test_warped_needs_a_condition() -> None:
    with pytest.raises(ValueError, match="flow conditions"):
        sample_video_noise(1, 2, (1, 4, 4), "warped")


def test_sampler_carries_z_T_and_every_ddim_draw_along_the_condition() -> None:
    """DDIM with eta = 1 and a per-pixel network: every network input of frame 2 is frame 1's moved."""
    dx, dy = 2, 1
    condition = _translation(dx, dy)[None].expand(2, -1, -1, -1, -1)
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False)
    seen = []

    def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append(x_t.clone())
        return 0.3 * x_t

    z_T = torch.randn(2, 3, H, W, generator=torch.Generator().manual_seed(6))
    for initial_noise in (None, z_T):
        seen.clear()
        sector_sample(denoise, scheduler, 2, 2, (3, H, W), num_inference_steps=4, eta=1.0, noise_sharing="warped",
                      generator=torch.Generator().manual_seed(0), initial_noise=initial_noise, condition=condition)
        visible = condition[0, 1, 2] > 0.5
        ys, xs = torch.nonzero(visible, as_tuple=True)
        for x_t in seen:
            # elementwise float ops on equal values; 1e-6 allows a vectorised path's rounding
            torch.testing.assert_close(x_t[:, 1][:, :, ys, xs], x_t[:, 0][:, :, ys + dy, xs + dx], atol=1e-6, rtol=0)
            # the disoccluded border carries fresh draws, so frames differ there (shared would not)
            assert not torch.allclose(x_t[:, 1][:, :, ~visible], x_t[:, 0][:, :, ~visible])
        if initial_noise is not None:
            torch.testing.assert_close(seen[0][:, 0], z_T, atol=1e-6, rtol=0)
