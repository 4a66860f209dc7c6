"""Conditioning encoders and the S2DM LightningModule."""

from s2dm_lightning.diffusion import default_noise_scheduler
from s2dm_lightning.models.flow_conditioning import FlowConditioner
from s2dm_lightning.models.flow_generator import FlowGenerator
from s2dm_lightning.models.s2dm import S2DM
from s2dm_lightning.models.text_encoder import CachedTextEncoder, CLIPTextEncoder, MiniLMTextEncoder
from s2dm_lightning.models.vae_finetune import VAEFineTune

__all__ = [
    "S2DM",
    "CLIPTextEncoder",
    "CachedTextEncoder",
    "FlowConditioner",
    "FlowGenerator",
    "MiniLMTextEncoder",
    "VAEFineTune",
    "default_noise_scheduler",
]
