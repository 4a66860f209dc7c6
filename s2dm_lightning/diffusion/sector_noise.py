"""Sector-shaped forward process (paper Sec. 3.2, Eq. 6-8 and 11).

Symbols: a video is a group x = {x_0^i}, i = 1..N frames. In ``shared`` mode every
frame of a video is perturbed with the same noise nu_t (Eq. 7) at the same step t,
x_t^i = sqrt(alpha_hat_t) x_0^i + sqrt(1 - alpha_hat_t) nu_t (Eq. 8). ``independent``
is the standard process (each frame its own epsilon_t^i and its own t), the paper's
ablation (III). Tensors are laid out (B videos, F frames, C, H, W).
"""

from __future__ import annotations

from typing import Literal

import torch

from s2dm_lightning.validation import check_choice, check_probability

NoiseSharing = Literal["shared", "independent"]
NOISE_SHARING_MODES = ("shared", "independent")


def _check_mode(mode: str) -> None:
    check_choice("noise sharing", mode, NOISE_SHARING_MODES)


def sample_video_noise(
    num_videos: int,
    num_frames: int,
    frame_shape: tuple[int, ...],
    mode: NoiseSharing = "shared",
    generator: torch.Generator | list[torch.Generator] | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Noise of shape (B, F, *frame_shape): one nu per video (``shared``) or one per frame.

    ``generator`` may be a list with one generator per video, so that a video's noise does
    not depend on which other videos share its batch.
    """
    _check_mode(mode)
    per_video_frames = 1 if mode == "shared" else num_frames
    if isinstance(generator, list):
        if len(generator) != num_videos:
            raise ValueError(f"got {len(generator)} generators for {num_videos} videos")
        noise = torch.stack([
            torch.randn((per_video_frames, *frame_shape), generator=g, device=device, dtype=dtype) for g in generator
        ])
    else:
        noise = torch.randn(
            (num_videos, per_video_frames, *frame_shape), generator=generator, device=device, dtype=dtype
        )
    return noise.expand(num_videos, num_frames, *frame_shape).contiguous()


def sample_video_timesteps(
    num_videos: int,
    num_frames: int,
    num_train_timesteps: int,
    mode: NoiseSharing = "shared",
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Timesteps of shape (B, F): one t per video (the group at step t, Eq. 8) or one per frame."""
    _check_mode(mode)
    per_video_frames = 1 if mode == "shared" else num_frames
    t = torch.randint(
        0, num_train_timesteps, (num_videos, per_video_frames), generator=generator, device=device
    )
    return t.expand(num_videos, num_frames).contiguous()


def add_noise_to_videos(
    alphas_cumprod: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
) -> torch.Tensor:
    """x_t^i = sqrt(alpha_hat_t) x_0^i + sqrt(1 - alpha_hat_t) nu_t for (B, F, ...) tensors.

    ``alphas_cumprod`` is the scheduler's alpha_hat table (diffusers' ``alphas_cumprod``).
    """
    alpha_hat = alphas_cumprod.to(device=x0.device, dtype=torch.float32)[timesteps]
    alpha_hat = alpha_hat.reshape(*timesteps.shape, *([1] * (x0.dim() - timesteps.dim())))
    x_t = alpha_hat.sqrt() * x0.float() + (1.0 - alpha_hat).sqrt() * noise.float()
    return x_t.to(x0.dtype)


PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")


def diffusion_target(
    alphas_cumprod: torch.Tensor,
    prediction_type: str,
    x0: torch.Tensor,
    noise: torch.Tensor,
    timesteps: torch.Tensor,
) -> torch.Tensor:
    """What the network learns to predict from x_t, by diffusers' ``prediction_type``.

    ``epsilon``: nu (paper Eq. 11); ``sample``: x_0; ``v_prediction``:
    v = sqrt(alpha_hat_t) nu - sqrt(1 - alpha_hat_t) x_0 (Salimans & Ho 2022). x0 and noise
    are (B, F, ...) or (N, ...) with ``timesteps`` of shape (B, F) / (B,) / (N,).
    """
    check_prediction_type(prediction_type)
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "sample":
        return x0
    alpha_hat = alphas_cumprod.to(device=x0.device, dtype=torch.float32)[timesteps]
    alpha_hat = alpha_hat.reshape(*timesteps.shape, *([1] * (x0.dim() - timesteps.dim())))
    v = alpha_hat.sqrt() * noise.float() - (1.0 - alpha_hat).sqrt() * x0.float()
    return v.to(x0.dtype)


def check_prediction_type(prediction_type: str, key: str = "noise_scheduler prediction_type") -> None:
    """Raise a ValueError naming ``key`` unless ``prediction_type`` is one :func:`diffusion_target` knows."""
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"{key} must be one of {PREDICTION_TYPES}, got {prediction_type!r}")


def sample_condition_keep(
    num_videos: int, drop_probability: float, generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """Classifier-free condition dropout, one draw per video: True = keep the condition."""
    check_probability("condition dropout probability", drop_probability)
    u = torch.rand((num_videos,), generator=generator, device=device)
    return u >= drop_probability
