"""DDIM inversion against a toy network whose inverse is known in closed form.

If the data is Gaussian, x_0 ~ N(mu, s^2) per value, the exact noise prediction is linear in x_t,
eps(x_t, t) = sqrt(1 - a_t) (x_t - sqrt(a_t) mu) / (a_t s^2 + 1 - a_t), so a DDIM step (eta = 0) is an
affine map per value, x_t' = A x_t + b, and its exact inverse is x_t = (x_t' - b) / A.
"""

import pytest
import torch
from diffusers import DDIMScheduler

from s2dm_lightning.diffusion.ddim_inversion import ddim_invert, predicted_noise
from s2dm_lightning.diffusion.sector_sampler import sector_sample

B, F, SHAPE = 2, 3, (3, 4, 4)
MU, SIGMA = 0.3, 0.5
STEPS = 20


def _scheduler(prediction_type: str) -> DDIMScheduler:
    return DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False,
                         set_alpha_to_one=True, prediction_type=prediction_type)


def _gaussian_network(scheduler: DDIMScheduler):
    """The exact network output (of the scheduler's prediction type) for Gaussian data N(MU, SIGMA^2)."""
    def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = scheduler.alphas_cumprod[int(t)].to(x_t.dtype)
        eps = (1 - a).sqrt() * (x_t - a.sqrt() * MU) / (a * SIGMA**2 + 1 - a)
        x0 = (x_t - (1 - a).sqrt() * eps) / a.sqrt()
        kind = scheduler.config.prediction_type
        return {"epsilon": eps, "sample": x0, "v_prediction": a.sqrt() * eps - (1 - a).sqrt() * x0}[kind]
    return denoise


def _exact_inverse(scheduler: DDIMScheduler, x0: torch.Tensor) -> torch.Tensor:
    """Undo each affine DDIM step in closed form, in float64."""
    scheduler.set_timesteps(STEPS)
    ratio = 1000 // STEPS
    alphas = scheduler.alphas_cumprod.double()
    x = x0.double()
    for t in scheduler.timesteps.flip(0).tolist():
        a, a_prev = alphas[t], (alphas[t - ratio] if t - ratio >= 0 else torch.tensor(1.0, dtype=torch.float64))
        c = (1 - a).sqrt() / (a * SIGMA**2 + 1 - a)  # eps = c (x_t - sqrt(a) mu)
        along_x = (a_prev / a).sqrt()  # x_t' = along_x x_t + along_eps eps
        along_eps = (1 - a_prev).sqrt() - (a_prev * (1 - a) / a).sqrt()
        x = (x + along_eps * c * a.sqrt() * MU) / (along_x + along_eps * c)
    return x.float()


def _sample(scheduler: DDIMScheduler, z_t: torch.Tensor) -> torch.Tensor:
    return sector_sample(_gaussian_network(scheduler), scheduler, B, F, SHAPE, num_inference_steps=STEPS,
                              eta=0.0, initial_noise=z_t)


def _data() -> torch.Tensor:
    return MU + SIGMA * torch.randn(B, F, *SHAPE, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_fixed_point_inversion_is_the_exact_inverse(prediction_type: str) -> None:
    scheduler = _scheduler(prediction_type)
    x0 = _data()
    z_t = ddim_invert(_gaussian_network(scheduler), x0, scheduler, STEPS, fixed_point_iterations=8)
    # plain inversion is off by ~0.2 here and each iteration shrinks that ~5x, so 8 leave ~1e-6;
    # 1e-4 is float32 rounding over 20 steps
    torch.testing.assert_close(z_t, _exact_inverse(scheduler, x0), atol=1e-4, rtol=0)
    torch.testing.assert_close(_sample(scheduler, z_t), x0, atol=1e-4, rtol=0)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_fixed_point_iterations_reduce_the_reconstruction_error(prediction_type: str) -> None:
    scheduler = _scheduler(prediction_type)
    x0 = _data()
    errors = []
    for iterations in (0, 1, 2):
        z_t = ddim_invert(_gaussian_network(scheduler), x0, scheduler, STEPS, fixed_point_iterations=iterations)
        errors.append(float((_sample(scheduler, z_t) - x0).abs().max()))
    assert errors[0] > 1e-3, "plain inversion should be visibly inexact at 20 steps (else the test shows nothing)"
    # each iteration shrinks the error about 5x here (0.21, 0.042, 0.0085 for epsilon): demand 3x
    assert errors[0] > 3 * errors[1] and errors[1] > 3 * errors[2], errors


def test_predicted_noise_reads_each_prediction_type() -> None:
    a = torch.tensor(0.3)
    x0, eps = torch.randn(5, generator=torch.Generator().manual_seed(1)), torch.randn(5)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    outputs = {"epsilon": eps, "sample": x0, "v_prediction": a.sqrt() * eps - (1 - a).sqrt() * x0}
    for kind, output in outputs.items():
        torch.testing.assert_close(predicted_noise(output, x_t, a, kind), eps, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="prediction_type"):
        predicted_noise(eps, x_t, a, "score")


@pytest.mark.parametrize("iterations", [-1, 1.5, True])
def test_bad_fixed_point_iterations_are_refused(iterations) -> None:
    scheduler = _scheduler("epsilon")
    with pytest.raises(ValueError, match="fixed_point_iterations"):
        ddim_invert(_gaussian_network(scheduler), _data(), scheduler, STEPS, fixed_point_iterations=iterations)
