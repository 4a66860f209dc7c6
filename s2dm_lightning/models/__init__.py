"""Conditioning encoders and the S2DM LightningModule."""

from s2dm_lightning.models.flow_conditioning import FlowConditioner
from s2dm_lightning.models.s2dm import S2DM, default_noise_scheduler
from s2dm_lightning.models.text_encoder import CachedTextEncoder, MiniLMTextEncoder

__all__ = ["S2DM", "CachedTextEncoder", "FlowConditioner", "MiniLMTextEncoder", "default_noise_scheduler"]
