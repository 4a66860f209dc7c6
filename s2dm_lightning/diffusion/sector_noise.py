"""Sector-shaped forward process (paper Sec. 3.2, Eq. 6-8 and 11).

Symbols: a video is a group x = {x_0^i}, i = 1..N frames. In ``shared`` mode every
frame of a video is perturbed with the same noise nu_t (Eq. 7) at the same step t,
x_t^i = sqrt(alpha_hat_t) x_0^i + sqrt(1 - alpha_hat_t) nu_t (Eq. 8). ``independent``
is the standard process (each frame its own epsilon_t^i and its own t), the paper's
ablation (III). ``warped`` carries frame 1's nu along each frame's condition and ``partial``
(``partial`` = a drawn per video, ``partial:<a>`` = a fixed) mixes it with fresh noise
(:mod:`.noise_transport`); both keep one t per video. Tensors are laid out (B videos, F frames, C, H, W).
"""

from __future__ import annotations

import torch

from s2dm_lightning.diffusion.noise_transport import degrade_noise, transport_video_noise
from s2dm_lightning.validation import check_probability

#: ``shared``, ``independent``, ``warped``, ``partial`` or ``partial:<a>`` with a in [0, 1].
NoiseSharing = str
NOISE_SHARING_MODES = ("shared", "independent", "warped", "partial")


def parse_noise_sharing(mode: str, key: str = "noise sharing") -> tuple[str, float | None]:
    """(kind, degradation a) of a mode; a is None for ``partial`` (drawn per video) and the others."""
    kind, _, value = str(mode).partition(":")
    if kind not in NOISE_SHARING_MODES or (value and kind != "partial"):
        raise ValueError(f"{key} must be one of {', '.join(map(repr, NOISE_SHARING_MODES))} or 'partial:<a>' "
                         f"with a in [0, 1]; got {mode!r}")
    if not value:
        return kind, None
    try:
        degradation = float(value)
    except ValueError:
        degradation = float("nan")
    if not 0.0 <= degradation <= 1.0:
        raise ValueError(f"{key} {mode!r}: the degradation a after 'partial:' must be a number in [0, 1]")
    return kind, degradation


def check_noise_sharing(key: str, mode: str) -> None:
    """Raise a ValueError naming ``key`` unless ``mode`` is a noise-sharing mode."""
    parse_noise_sharing(mode, key)


def _per_video_frames(mode: str, num_frames: int) -> int:
    return num_frames if parse_noise_sharing(mode)[0] == "independent" else 1


def sample_video_noise(
    num_videos: int,
    num_frames: int,
    frame_shape: tuple[int, ...],
    mode: NoiseSharing = "shared",
    generator: torch.Generator | list[torch.Generator] | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    condition: torch.Tensor | None = None,
) -> torch.Tensor:
    """Noise of shape (B, F, *frame_shape): one nu per video (``shared``), one per frame, or
    frame 1's carried along ``condition`` (B, F, 3, h, w) (``warped``, ``partial``; required there).

    ``generator`` may be a list with one generator per video, so that a video's noise does
    not depend on which other videos share its batch.
    """
    kind, degradation = parse_noise_sharing(mode)
    per_video_frames = _per_video_frames(mode, num_frames)
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
    if kind in ("shared", "independent"):
        return noise.expand(num_videos, num_frames, *frame_shape).contiguous()
    return transport_noise(noise[:, 0], kind, degradation, condition, generator)


def transport_noise(base: torch.Tensor, kind: str, degradation: float | None, condition: torch.Tensor | None,
                    generator: torch.Generator | list[torch.Generator] | None) -> torch.Tensor:
    """Frame-1 noise (B, C, H, W) as a ``warped`` or ``partial`` video (B, F, C, H, W)."""
    if condition is None:
        raise ValueError(f"noise sharing {kind!r} needs the frames' flow conditions to carry the noise along")
    warped = transport_video_noise(base, condition, generator)
    return warped if kind == "warped" else degrade_noise(warped, degradation, generator)


def sample_video_timesteps(
    num_videos: int,
    num_frames: int,
    num_train_timesteps: int,
    mode: NoiseSharing = "shared",
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Timesteps of shape (B, F): one t per video (the group at step t, Eq. 8) or one per frame."""
    per_video_frames = _per_video_frames(mode, num_frames)
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
