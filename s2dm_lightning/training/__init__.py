"""The training recipe's options: optimiser class and LR schedule, LoRA and training a subset of the network.

The diffusion modules take these as init arguments (:class:`s2dm_lightning.models.diffusion_module.DiffusionModule`);
the loss weighting (Min-SNR-gamma) is diffusion math and lives in :mod:`s2dm_lightning.diffusion.loss_weighting`.
"""

from s2dm_lightning.training.lora import LORA_ATTENTION_PROJECTIONS, LORA_EXPORTS, LoraExport
from s2dm_lightning.training.optimizers import (
    LR_SCHEDULES,
    AdamW8bit,
    LRSchedule,
    OptimizerFactory,
    build_optimizer,
    lr_factor,
)

__all__ = ["LR_SCHEDULES", "LORA_ATTENTION_PROJECTIONS", "LORA_EXPORTS", "LoraExport", "AdamW8bit", "LRSchedule", "OptimizerFactory",
           "build_optimizer", "lr_factor"]
