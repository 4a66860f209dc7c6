"""The optimiser both diffusion modules use: AdamW with a linear learning-rate warm-up, stepped per step."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


def adamw_with_warmup(
    parameters: Iterable[torch.nn.Parameter], learning_rate: float, weight_decay: float, warmup_steps: int
) -> dict[str, Any]:
    """Lightning's ``configure_optimizers`` answer for the trainable ``parameters``."""
    params = [p for p in parameters if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)
    warmup = max(1, warmup_steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
