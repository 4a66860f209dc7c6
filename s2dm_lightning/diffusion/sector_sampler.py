"""Sector-shaped reverse process (paper Sec. 3.2, Fig. 3, Eq. 10) with a diffusers scheduler.

All F frames of a video start from the same z_T (the centre of the sector) and every
stochastic draw of the sampler (DDIM with eta > 0, an SDE solver's noise) is shared by
them as well; frames differ only through their temporal condition y^i, which lives in
``denoise``. The scheduler is DDIM (the paper) or any one :mod:`.samplers` accepts.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers import SchedulerMixin
from tqdm.auto import tqdm

from s2dm_lightning.diffusion.samplers import check_shareable_noise, step_parameters
from s2dm_lightning.diffusion.sector_noise import (
    NoiseSharing,
    parse_noise_sharing,
    sample_video_noise,
    transport_noise,
)
from s2dm_lightning.validation import check_number

# denoise(x_t of shape (B, F, C, H, W), t) -> guided eps of the same shape
Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_sampler_settings(num_inference_steps: int, eta: float, num_train_timesteps: int, prefix: str = "") -> None:
    """1 <= steps <= the training timesteps and eta >= 0; ``prefix`` + the name is the config key."""
    check_number(f"{prefix}num_inference_steps", num_inference_steps, at_least=1, at_most=num_train_timesteps,
                 note="sampling steps; at most the noise scheduler's num_train_timesteps")
    check_number(f"{prefix}eta", eta, at_least=0, note="DDIM eta: 0 = deterministic, 1 = as much noise as DDPM")


@torch.no_grad()
def sector_sample(
    denoise: Denoiser,
    scheduler: SchedulerMixin,
    num_videos: int,
    num_frames: int,
    frame_shape: tuple[int, int, int],
    num_inference_steps: int = 20,
    eta: float = 0.0,
    noise_sharing: NoiseSharing = "shared",
    generator: torch.Generator | list[torch.Generator] | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    initial_noise: torch.Tensor | None = None,
    progress: bool = False,
    condition: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sample (B, F, C, H, W) frames.

    Args:
        denoise: guided noise prediction for all frames (and guidance branches) at step t.
        scheduler: DDIM, or another scheduler whose step draws no noise of its own (see
            :mod:`.samplers`); its timesteps (and a multistep solver's history) are reset here.
        eta: DDIM's eta (0 for schedulers without one). A scheduler whose step takes
            ``variance_noise`` (an SDE solver) gets it drawn per video like z_T
            (its deterministic variants ignore it).
        initial_noise: z_T, (B, C, H, W) shared by all frames or (B, F, C, H, W); drawn if None.
        noise_sharing: ``shared`` (S2DM) or ``independent`` (each frame its own z_T and draws), or
            ``warped`` / ``partial``: z_T (drawn, or a given (B, C, H, W) one) and every draw carried
            along ``condition`` (B, F, 3, h, w) per frame (:mod:`.noise_transport`).
    """
    check_sampler_settings(num_inference_steps, eta, scheduler.config.num_train_timesteps)
    check_number("num_frames", num_frames, at_least=1)
    check_shareable_noise(scheduler, eta)
    params = step_parameters(scheduler)
    stochastic = eta > 0 if "eta" in params else "variance_noise" in params
    ddim_arguments = {"eta": eta} if "eta" in params else {}
    # Draws happen on the generator's device (a CPU generator gives the same draws on any device).
    first = generator[0] if isinstance(generator, list) else generator
    noise_device = first.device if first is not None else device

    def draw() -> torch.Tensor:
        noise = sample_video_noise(num_videos, num_frames, frame_shape, noise_sharing, generator, noise_device, dtype,
                                   condition)
        return noise.to(device)

    kind, degradation = parse_noise_sharing(noise_sharing)
    if initial_noise is None:
        latents = draw()
    elif initial_noise.dim() == 4 and kind in ("warped", "partial"):
        latents = transport_noise(initial_noise.to(noise_device, dtype), kind, degradation, condition, generator)
    elif initial_noise.dim() == 4:
        latents = initial_noise.unsqueeze(1).expand(-1, num_frames, -1, -1, -1).contiguous()
    else:
        latents = initial_noise.clone()
    latents = latents.to(device=device, dtype=dtype) * scheduler.init_noise_sigma

    scheduler.set_timesteps(num_inference_steps, device=device)
    for t in tqdm(scheduler.timesteps, desc=type(scheduler).__name__, disable=not progress, leave=False):
        model_input = scheduler.scale_model_input(latents, t)
        eps = denoise(model_input, t)
        noise = {"variance_noise": draw().flatten(0, 1)} if stochastic else {}
        step = scheduler.step(eps.flatten(0, 1), t, latents.flatten(0, 1), **ddim_arguments, **noise)
        latents = step.prev_sample.view_as(latents)
    return latents
