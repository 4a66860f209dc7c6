"""The sector sampler against closed forms, with fake networks (as diffusers tests its schedulers).

If every frame i of the data is one fixed image x0_i, the exact noise prediction is
eps(x_t, t) = (x_t - sqrt(abar_t) x0_i) / sqrt(1 - abar_t), and DDIM (any eta) must end on x0_i.
"""

import math

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, EulerAncestralDiscreteScheduler

from s2dm_lightning.diffusion import build_sampler
from s2dm_lightning.diffusion.sector_sampler import sector_sample

B, F, SHAPE = 2, 5, (3, 4, 4)


def _scheduler() -> DDIMScheduler:
    return DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False,
                         set_alpha_to_one=True, prediction_type="epsilon")


def _oracle(scheduler: DDIMScheduler, targets: torch.Tensor):
    """The exact eps of a data distribution that is the point ``targets`` (B, F, C, H, W)."""
    def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        abar = scheduler.alphas_cumprod[int(t)].to(x_t.dtype)
        return (x_t - abar.sqrt() * targets) / (1 - abar).sqrt()
    return denoise


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_exact_noise_prediction_lands_on_each_frames_target(eta: float) -> None:
    scheduler = _scheduler()
    targets = torch.rand(B, F, *SHAPE, generator=torch.Generator().manual_seed(1)) * 2 - 1
    out = sector_sample(_oracle(scheduler, targets), scheduler, B, F, SHAPE, num_inference_steps=10,
                             eta=eta, generator=torch.Generator().manual_seed(0))
    # float32: each of 10 steps rescales by at most 1/sqrt(abar) ~ 1e2 at t=999, so 1e-4 is rounding
    torch.testing.assert_close(out, targets, atol=1e-4, rtol=0)


def test_one_step_matches_the_ddim_formula() -> None:
    """x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev) eps, x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
    scheduler = _scheduler()
    z_T = torch.randn(B, *SHAPE, generator=torch.Generator().manual_seed(2))
    seen = []

    def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append((x_t.clone(), int(t)))
        return 0.3 * x_t

    out = sector_sample(denoise, scheduler, B, F, SHAPE, num_inference_steps=1, initial_noise=z_T)
    (x_t, t), = seen
    assert t == int(scheduler.timesteps[0])
    abar_t, abar_prev = scheduler.alphas_cumprod[t].item(), 1.0  # one step: set_alpha_to_one
    eps = 0.3 * x_t
    x0_hat = (x_t - math.sqrt(1 - abar_t) * eps) / math.sqrt(abar_t)
    expected = math.sqrt(abar_prev) * x0_hat + math.sqrt(1 - abar_prev) * eps
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_every_frame_starts_from_the_one_z_T_and_all_frames_go_in_one_call() -> None:
    scheduler = _scheduler()
    z_T = torch.randn(B, *SHAPE, generator=torch.Generator().manual_seed(3))
    calls = []

    def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls.append((tuple(x_t.shape), int(t), x_t.clone()))
        return torch.zeros_like(x_t)

    sector_sample(denoise, scheduler, B, F, SHAPE, num_inference_steps=4, initial_noise=z_T)
    assert [c[0] for c in calls] == [(B, F, *SHAPE)] * 4  # one batched call per step
    assert [c[1] for c in calls] == scheduler.timesteps.tolist()
    first_input = calls[0][2]
    for frame in range(F):  # DDIM's init_noise_sigma is 1: the first input is z_T itself
        assert torch.equal(first_input[:, frame], z_T * scheduler.init_noise_sigma)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_shared_mode_keeps_frames_equal_and_independent_mode_does_not(eta: float) -> None:
    """A network blind to the frame index: with one z_T and shared draws the frames stay identical
    (same values through the same element-wise ops in one batch, so bit for bit); independent noise
    gives every frame its own video."""
    scheduler = _scheduler()

    def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return 0.5 * x_t

    shared = sector_sample(denoise, scheduler, B, F, SHAPE, num_inference_steps=5, eta=eta,
                                generator=torch.Generator().manual_seed(4))
    assert all(torch.equal(shared[:, i], shared[:, 0]) for i in range(F))
    assert not torch.equal(shared[0], shared[1]), "videos of one batch must get their own z_T"
    independent = sector_sample(denoise, scheduler, B, F, SHAPE, num_inference_steps=5, eta=eta,
                                     noise_sharing="independent", generator=torch.Generator().manual_seed(4))
    assert (independent[:, 1] - independent[:, 0]).abs().max() > 0.1


def test_eta_draws_are_shared_per_video() -> None:
    """With eta = 1 the sampler's own draws must not tell frames apart: the same z_T with eta = 1
    differs from eta = 0 (draws happened), but not between frames."""
    scheduler = _scheduler()
    z_T = torch.randn(B, *SHAPE, generator=torch.Generator().manual_seed(5))

    def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return 0.5 * x_t

    deterministic = sector_sample(denoise, scheduler, B, F, SHAPE, num_inference_steps=5, initial_noise=z_T)
    stochastic = sector_sample(denoise, scheduler, B, F, SHAPE, num_inference_steps=5, eta=1.0,
                                    initial_noise=z_T, generator=torch.Generator().manual_seed(6))
    assert (stochastic - deterministic).abs().max() > 0.05
    assert all(torch.equal(stochastic[:, i], stochastic[:, 0]) for i in range(F))


def test_same_generator_seed_repeats_the_video_exactly() -> None:
    scheduler = _scheduler()

    def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return 0.1 * x_t

    run = [sector_sample(denoise, scheduler, B, F, SHAPE, num_inference_steps=3, eta=1.0,
                              generator=torch.Generator().manual_seed(7)) for _ in range(2)]
    assert torch.equal(run[0], run[1])  # same batch, same seed: bit for bit


# ----------------------------------------------------------- multistep schedulers (diffusion/samplers.py)
def _multistep(name: str, **options):
    training = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False).config
    return build_sampler(training, name, options)


MULTISTEP = [("DPMSolverMultistepScheduler", {}), ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
             ("UniPCMultistepScheduler", {})]


@pytest.mark.parametrize("name, options", MULTISTEP)
def test_multistep_exact_noise_prediction_lands_on_each_frames_target(name, options) -> None:
    """The solvers are used correctly (timesteps, history, noise): the oracle eps ends on x0_i."""
    scheduler = _multistep(name, **options)
    targets = torch.rand(B, F, *SHAPE, generator=torch.Generator().manual_seed(1)) * 2 - 1
    out = sector_sample(_oracle(scheduler, targets), scheduler, B, F, SHAPE, num_inference_steps=10,
                        generator=torch.Generator().manual_seed(0))
    # float32 through 10 solver steps with 1/sqrt(abar) up to ~1e2 near t = T: 1e-3 is rounding
    torch.testing.assert_close(out, targets, atol=1e-3, rtol=0)


@pytest.mark.parametrize("name, options", MULTISTEP)
def test_multistep_keeps_one_z_T_per_video_and_shared_noise(name, options) -> None:
    """Network inputs captured at every step: the frames of a video get the same x_t at the first step
    (z_T) and, for a network blind to the frame index, at every later step too (an SDE's draws shared);
    the videos differ from each other."""
    scheduler = _multistep(name, **options)
    inputs = []

    def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        inputs.append(x_t.clone())
        return 0.5 * x_t

    out = sector_sample(denoise, scheduler, B, F, SHAPE, num_inference_steps=6,
                        generator=torch.Generator().manual_seed(8))
    assert len(inputs) == 6 and inputs[0].shape == (B, F, *SHAPE)
    for x_t in [*inputs, out]:  # same values through the same element-wise ops in one batch: bit for bit
        assert all(torch.equal(x_t[:, i], x_t[:, 0]) for i in range(F))
        assert (x_t[0, 0] - x_t[1, 0]).abs().max() > 0.1, "videos of one batch must get their own z_T"


def test_sde_draws_happen_and_are_shared_per_video() -> None:
    """The SDE variant with the same z_T differs from the ODE (it drew noise) but not between frames;
    with independent noise its draws tell the frames apart."""
    z_T = torch.randn(B, *SHAPE, generator=torch.Generator().manual_seed(5))

    def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return 0.5 * x_t

    ode = sector_sample(denoise, _multistep("DPMSolverMultistepScheduler"), B, F, SHAPE, num_inference_steps=5,
                        initial_noise=z_T, generator=torch.Generator().manual_seed(6))
    sde_scheduler = _multistep("DPMSolverMultistepScheduler", algorithm_type="sde-dpmsolver++")
    sde = sector_sample(denoise, sde_scheduler, B, F, SHAPE, num_inference_steps=5, initial_noise=z_T,
                        generator=torch.Generator().manual_seed(6))
    assert (sde - ode).abs().max() > 0.05
    assert all(torch.equal(sde[:, i], sde[:, 0]) for i in range(F))
    independent = sector_sample(denoise, sde_scheduler, B, F, SHAPE, num_inference_steps=5, initial_noise=z_T,
                                noise_sharing="independent", generator=torch.Generator().manual_seed(6))
    assert (independent[:, 1] - independent[:, 0]).abs().max() > 0.05


def test_a_scheduler_drawing_its_own_noise_is_refused() -> None:
    scheduler = EulerAncestralDiscreteScheduler(num_train_timesteps=1000)
    with pytest.raises(ValueError, match="sampler='EulerAncestralDiscreteScheduler': its step draws noise itself"):
        sector_sample(lambda x, t: x, scheduler, B, F, SHAPE, num_inference_steps=2)
