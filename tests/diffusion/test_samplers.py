"""Choosing the sampler: a diffusers scheduler built from the training schedule, bad choices named."""

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler

from s2dm_lightning.diffusion import build_sampler
from s2dm_lightning.diffusion.sector_sampler import sector_sample

KEY = "model.init_args."


def _training(**changes) -> dict:
    settings = {"num_train_timesteps": 1000, "beta_schedule": "linear", "prediction_type": "v_prediction"}
    return DDPMScheduler(**{**settings, **changes}).config


def test_default_is_ddim_with_the_training_schedule() -> None:
    scheduler = build_sampler(_training(clip_sample=True))
    assert isinstance(scheduler, DDIMScheduler)
    assert scheduler.config.prediction_type == "v_prediction" and scheduler.config.clip_sample
    assert dict(scheduler.config) == dict(DDIMScheduler.from_config(_training(clip_sample=True)).config)


@pytest.mark.parametrize("cls", [DPMSolverMultistepScheduler, UniPCMultistepScheduler])
def test_multistep_keeps_the_schedule_and_the_options(cls) -> None:
    options = {"solver_order": 3}
    scheduler = build_sampler(_training(clip_sample=False), cls.__name__, options)
    assert isinstance(scheduler, cls)
    assert scheduler.config.prediction_type == "v_prediction" and scheduler.config.solver_order == 3
    torch.testing.assert_close(scheduler.alphas_cumprod, DDPMScheduler.from_config(_training()).alphas_cumprod)
    assert not scheduler.config.thresholding


@pytest.mark.parametrize("cls", [DPMSolverMultistepScheduler, UniPCMultistepScheduler])
def test_clipped_schedule_stays_clipped_in_a_multistep_solver(cls) -> None:
    """clip_sample becomes thresholding at 1 (= the clip): an oracle for targets beyond [-1, 1]
    ends on the clipped targets, as DDIM with clip_sample does."""
    scheduler = build_sampler(_training(clip_sample=True, prediction_type="epsilon"), cls.__name__)
    assert scheduler.config.thresholding and scheduler.config.sample_max_value == 1.0
    targets = torch.linspace(-2, 2, 2 * 3 * 4 * 4).view(2, 1, 3, 4, 4).expand(2, 3, 3, 4, 4)

    def oracle(x_t, t):
        abar = scheduler.alphas_cumprod[int(t)]
        return (x_t - abar.sqrt() * targets) / (1 - abar).sqrt()

    out = sector_sample(oracle, scheduler, 2, 3, (3, 4, 4), num_inference_steps=8,
                        generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, targets.clamp(-1, 1), atol=1e-3, rtol=0)  # float32 rounding over 8 steps


@pytest.mark.parametrize("name, options, eta, message", [
    ("DPMSolverMultistep", None, 0.0, "model.init_args.sampler='DPMSolverMultistep' is not a diffusers scheduler class"),
    ("DDPMScheduler", None, 0.0, "model.init_args.sampler='DDPMScheduler': its step draws noise itself"),
    ("UniPCMultistepScheduler", None, 1.0, "eta=1.0 is DDIM's stochasticity; model.init_args.sampler="),
    ("DPMSolverMultistepScheduler", {"algoritm_type": "sde-dpmsolver++"}, 0.0,
     "model.init_args.sampler_options has 'algoritm_type', which DPMSolverMultistepScheduler does not take"),
    ("DPMSolverMultistepScheduler", {"algorithm_type": "sde"}, 0.0,
     "model.init_args.sampler_options=.*do not make a DPMSolverMultistepScheduler"),
])
def test_bad_sampler_choices_are_named(name, options, eta, message) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_sampler(_training(), name, options, eta, KEY)
