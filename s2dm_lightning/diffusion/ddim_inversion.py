"""Deterministic DDIM inversion: a clean x_0 -> the z_T from which DDIM sampling (eta = 0) returns it.

One sampling step of diffusers' ``DDIMScheduler`` (eta = 0) goes from t to t' = t - T // steps:

    eps = the model's noise at (x_t, t),   x0 = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)
    x_t' = sqrt(a_t') x0 + sqrt(1 - a_t') eps

For a fixed eps this is affine in x_t, so the x_t that lands on a given x_t' is

    x_t = sqrt(a_t / a_t') (x_t' - sqrt(1 - a_t') eps) + sqrt(1 - a_t) eps.

The eps of x_t needs x_t itself. Plain DDIM inversion (Song et al. 2021; Dhariwal & Nichol 2021)
evaluates it at x_t' instead; each fixed-point iteration re-evaluates it at the x_t just found and
redoes the step, which converges to the exact inverse of the sampling step where the network is
smooth (Pan et al. 2023, "Effective real image editing with accelerated iterative diffusion
inversion"). The network's output is read by the scheduler's ``prediction_type`` (epsilon, v or
sample), as the sampler reads it. The sampler's x_0 clipping (``clip_sample``) cannot be undone:
the inverse is exact where the predicted x_0 stays inside the clip range.

Pure diffusion math: the network is the ``denoise`` callable (as :mod:`.sector_sampler`).
"""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler

from s2dm_lightning.diffusion.sector_noise import check_prediction_type
from s2dm_lightning.diffusion.sector_sampler import Denoiser, check_sampler_settings
from s2dm_lightning.validation import check_number


def predicted_noise(model_output: torch.Tensor, x_t: torch.Tensor, alpha_hat: torch.Tensor,
                    prediction_type: str) -> torch.Tensor:
    """The noise eps implied by a network output at (x_t, alpha_hat_t), read as ``prediction_type`` is."""
    check_prediction_type(prediction_type)
    if prediction_type == "epsilon":
        return model_output
    if prediction_type == "v_prediction":
        return alpha_hat.sqrt() * model_output + (1 - alpha_hat).sqrt() * x_t
    return (x_t - alpha_hat.sqrt() * model_output) / (1 - alpha_hat).sqrt()  # "sample": the output is x_0


@torch.no_grad()
def ddim_invert(
    denoise: Denoiser,
    x0: torch.Tensor,
    scheduler: DDIMScheduler,
    num_inference_steps: int,
    fixed_point_iterations: int = 0,
) -> torch.Tensor:
    """Invert deterministic DDIM sampling: x_0 -> z_T, walking the sampler's timesteps upwards.

    Args:
        denoise: the network's output (the scheduler's ``prediction_type``) for x_t and a timestep,
            the same callable the sampler uses, e.g. (B, F, C, H, W) -> (B, F, C, H, W).
        x0: the clean sample, any shape ``denoise`` takes.
        scheduler: the DDIM scheduler sampling will use (its timesteps, alphas and final alpha);
            its timesteps are (re)set here.
        num_inference_steps: DDIM steps; sample back with the same number and eta = 0.
        fixed_point_iterations: extra evaluations per step at the current estimate of x_t (0 = plain
            DDIM inversion); each costs one more network call per step.

    Returns:
        z_T, float32, shaped like ``x0``.
    """
    check_sampler_settings(num_inference_steps, 0.0, scheduler.config.num_train_timesteps)
    if isinstance(fixed_point_iterations, bool) or not isinstance(fixed_point_iterations, int):
        raise ValueError(f"fixed_point_iterations must be an integer, got {fixed_point_iterations!r}")
    check_number("fixed_point_iterations", fixed_point_iterations, at_least=0)
    prediction_type = scheduler.config.prediction_type
    scheduler.set_timesteps(num_inference_steps, device=x0.device)
    ratio = scheduler.config.num_train_timesteps // num_inference_steps  # DDIMScheduler.step's previous timestep
    alphas = scheduler.alphas_cumprod.to(device=x0.device, dtype=torch.float32)
    final_alpha = torch.as_tensor(scheduler.final_alpha_cumprod, dtype=torch.float32, device=x0.device)
    x = x0.float()
    for t in scheduler.timesteps.flip(0):
        alpha_t = alphas[t]
        alpha_prev = alphas[t - ratio] if t - ratio >= 0 else final_alpha
        estimate = x  # first guess of x_t: the sample one step below
        for _ in range(1 + fixed_point_iterations):
            eps = predicted_noise(denoise(estimate, t).float(), estimate, alpha_t, prediction_type)
            estimate = (alpha_t / alpha_prev).sqrt() * (x - (1 - alpha_prev).sqrt() * eps) + (1 - alpha_t).sqrt() * eps
        x = estimate
    return x
