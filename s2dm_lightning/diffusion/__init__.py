"""Diffusion math of S2DM. Nothing here imports a network: the denoiser is a callable."""

from s2dm_lightning.diffusion.guidance import (
    GUIDANCE_MODES,
    GuidanceSettings,
    check_guidance_scales,
    combine_guidance,
    guidance_branches,
)
from s2dm_lightning.diffusion.samplers import DEFAULT_SAMPLER, build_sampler, default_noise_scheduler
from s2dm_lightning.diffusion.sector_noise import (
    NOISE_SHARING_MODES,
    PREDICTION_TYPES,
    NoiseSharing,
    add_noise_to_videos,
    check_noise_sharing,
    check_prediction_type,
    diffusion_target,
    parse_noise_sharing,
    sample_condition_keep,
    sample_video_noise,
    sample_video_timesteps,
)
from s2dm_lightning.diffusion.sector_sampler import check_sampler_settings, sector_sample

__all__ = [
    "DEFAULT_SAMPLER",
    "build_sampler",
    "default_noise_scheduler",
    "GUIDANCE_MODES",
    "NOISE_SHARING_MODES",
    "GuidanceSettings",
    "check_guidance_scales",
    "check_sampler_settings",
    "NoiseSharing",
    "add_noise_to_videos",
    "check_noise_sharing",
    "parse_noise_sharing",
    "PREDICTION_TYPES",
    "check_prediction_type",
    "combine_guidance",
    "diffusion_target",
    "guidance_branches",
    "sample_condition_keep",
    "sample_video_noise",
    "sample_video_timesteps",
    "sector_sample",
]
