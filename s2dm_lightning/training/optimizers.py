"""The optimiser and learning-rate schedule of the diffusion modules: a class the config names, and a schedule.

The optimiser is injected the LightningCLI way (as litgpt and the lightning-hydra-template do): the
module takes ``optimizer: OptimizerFactory``, which jsonargparse fills from ``class_path`` (+ ``init_args``)
with a callable that builds the class on the trainable parameters. The learning rate and weight decay
are the module's own ``learning_rate`` / ``weight_decay`` (so the paper configs keep their keys and a
schedule has one base rate); ``init_args`` give the optimiser's other arguments (betas, eps, ...), and
``lr`` / ``weight_decay`` there are refused by the parser. None = ``torch.optim.AdamW``, as before.

    model:
      init_args:
        learning_rate: 2.0e-5
        optimizer:
          class_path: torch.optim.Adafactor          # or s2dm_lightning.training.AdamW8bit
          init_args: {beta2_decay: -0.8}

Schedules (``lr_schedule``), as a factor of the base rate at optimiser step s = 0, 1, ... with
W = max(1, warmup_steps) and T the decay length:

* ``constant``: min(1, (s + 1) / W)  (linear warm-up, then constant; the default, as before);
* ``cosine``: (s + 1) / W during the warm-up, then 0.5 (1 + cos(pi * min(1, (s + 1 - W) / (T + 1 - W)))),
  which is 1 at the end of the warm-up and falls to 0 one step after step T - 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Literal, Protocol

import torch

LRSchedule = Literal["constant", "cosine"]
LR_SCHEDULES = ("constant", "cosine")
OPTIMIZER_8BIT_EXTRA = "optim8bit"  # pyproject's extra that installs bitsandbytes


class OptimizerFactory(Protocol):
    """Builds an optimiser on ``params``; the module passes ``lr`` and ``weight_decay`` (its own settings)."""

    def __call__(self, params: Iterable[Any], /, *, lr: float, weight_decay: float) -> torch.optim.Optimizer: ...


class AdamW8bit(torch.optim.Optimizer):
    """bitsandbytes' 8-bit AdamW (its two moments in 8 bits: 2 bytes a parameter instead of 8).

    ``optimizer: s2dm_lightning.training.AdamW8bit`` in a config. Without bitsandbytes the error says
    which extra installs it. Runs on CPU and CUDA with bitsandbytes >= 0.49 (checked on CPU here).
    """

    def __new__(cls, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                eps: float = 1e-8, weight_decay: float = 1e-2, min_8bit_size: int = 4096) -> Any:
        try:
            from bitsandbytes.optim import AdamW8bit as BitsAndBytesAdamW8bit
        except ImportError as error:
            raise ImportError(
                "model.init_args.optimizer=s2dm_lightning.training.AdamW8bit needs bitsandbytes: "
                f"pip install 's2dm_lightning[{OPTIMIZER_8BIT_EXTRA}]' (or pip install bitsandbytes)"
            ) from error
        return BitsAndBytesAdamW8bit(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                     min_8bit_size=min_8bit_size)

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, min_8bit_size: int = 4096) -> None:
        """(Never runs: ``__new__`` returns bitsandbytes' optimiser; the signature documents the arguments.)

        Args:
            params: the parameters to optimise.
            lr: the learning rate (the module passes its ``learning_rate``).
            betas: the moments' decay rates.
            eps: added to the denominator.
            weight_decay: decoupled weight decay (the module passes its ``weight_decay``).
            min_8bit_size: tensors with fewer elements keep 32-bit moments (bitsandbytes' default 4096).
        """
        raise AssertionError("unreachable")  # pragma: no cover


def lr_factor(step: int, schedule: LRSchedule, warmup_steps: int, decay_steps: int | None = None) -> float:
    """The factor of the base learning rate at optimiser step ``step`` (0-based; module doc)."""
    warmup = max(1, warmup_steps)
    if schedule == "constant" or step + 1 < warmup:
        return min(1.0, (step + 1) / warmup)
    assert decay_steps is not None, "the cosine schedule needs its length"
    progress = min(1.0, (step + 1 - warmup) / max(1, decay_steps + 1 - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def schedule_factor(schedule: LRSchedule, warmup_steps: int, decay_steps: int | None) -> Callable[[int], float]:
    """``lr_factor`` as LambdaLR's function of the step."""
    if schedule == "constant":
        warmup = max(1, warmup_steps)
        return lambda step: min(1.0, (step + 1) / warmup)  # the expression of the module before the option
    return lambda step: lr_factor(step, schedule, warmup_steps, decay_steps)


def build_optimizer(
    parameters: Iterable[torch.nn.Parameter],
    factory: OptimizerFactory | None,
    learning_rate: float,
    weight_decay: float,
    schedule: LRSchedule,
    warmup_steps: int,
    decay_steps: int | None,
) -> dict[str, Any]:
    """Lightning's ``configure_optimizers`` answer: ``factory`` (None: AdamW) on the parameters that
    require a gradient, with the schedule stepped every optimiser step."""
    params = [p for p in parameters if p.requires_grad]
    optimizer = (factory or torch.optim.AdamW)(params, lr=learning_rate, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule_factor(schedule, warmup_steps, decay_steps))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
