"""Stop (or skip) a training step whose loss or gradient norm is not finite, before it reaches the weights.

Nothing in Lightning stops a run whose loss became NaN or inf: it trains on, validates NaN, and its
next interval checkpoint (and ``last.ckpt``, and the EMA copy) overwrites good weights with NaN.
:class:`FiniteLossGuard` looks at the loss before the backward pass and at the total gradient norm
before the optimizer step, so the bad step never updates a weight:

- by default it stops ``fit`` with :class:`NonFiniteLossError`, naming the step, the loss terms the
  module logged in that step and the last good checkpoint (nothing is written after it: the
  interval checkpoint, ``last.ckpt`` and the EMA keep the weights of before the step);
- with ``max_skipped_steps: N`` it drops up to N bad steps instead (the gradients are discarded:
  no weight and no Adam moment moves; the step counter and the LR schedule go on), with a warning
  each, and stops at the N+1-th.

Under DDP the decision follows the gradient norm, which is the same on every rank once the gradients
are all-reduced (a NaN on one rank reaches all), so the ranks stop or skip together. With
``16-mixed`` precision inf gradients are the loss scaler's business (it skips those steps itself):
only the loss is checked there.
"""

from __future__ import annotations

import math

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_warn

from s2dm_lightning.callbacks.checkpoint_at_end import last_written
from s2dm_lightning.validation import check_number


class NonFiniteLossError(RuntimeError):
    """Training stopped at a step whose loss or gradient norm was NaN or inf (printed alone, exit status 1)."""

    printed_alone = True  # s2dm_lightning.commands.errors prints it as the last line
    exit_status = 1


class FiniteLossGuard(Callback):
    """Stop at (or skip up to ``max_skipped_steps``) training steps whose loss or gradient norm is not finite.

    Args:
        max_skipped_steps: bad steps dropped (with a warning each) before the run is stopped;
            0 (the default) stops at the first.
    """

    def __init__(self, max_skipped_steps: int = 0) -> None:
        check_number("FiniteLossGuard.max_skipped_steps", max_skipped_steps, at_least=0)
        self.max_skipped_steps = int(max_skipped_steps)
        self.skipped_steps: list[int] = []
        self._bad_loss: float | None = None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.skipped_steps, self._bad_loss = [], None

    def on_before_backward(self, trainer: Trainer, pl_module: LightningModule, loss: torch.Tensor) -> None:
        if not bool(torch.isfinite(loss.detach()).all()):
            self._bad_loss = float(loss.detach().float().sum())

    def on_before_optimizer_step(self, trainer: Trainer, pl_module: LightningModule, optimizer) -> None:
        bad_loss, self._bad_loss = self._bad_loss, None
        norm = None if "16" in str(trainer.precision) else gradient_norm(pl_module)
        if bad_loss is None and (norm is None or math.isfinite(norm)):
            return
        what = (f"loss {bad_loss}" if bad_loss is not None else "finite loss") + (
            f", gradient norm {norm}" if norm is not None else "")
        step = trainer.global_step
        if len(self.skipped_steps) < self.max_skipped_steps:
            self.skipped_steps.append(step)
            optimizer.zero_grad(set_to_none=True)  # Adam skips parameters without a gradient
            rank_zero_warn(f"FiniteLossGuard: skipped training step {step} ({what}; {logged_terms(trainer)}); "
                           f"{len(self.skipped_steps)} of max_skipped_steps={self.max_skipped_steps} used")
            return
        checkpoint = last_written(trainer)
        skipped = f"; steps skipped before: {self.skipped_steps}" if self.skipped_steps else ""
        raise NonFiniteLossError(
            f"non-finite training step at global_step {step}: {what}; logged terms: {logged_terms(trainer)}{skipped}. "
            "Nothing was written after it; the last good checkpoint is "
            f"{checkpoint if checkpoint else 'none (no checkpoint yet)'}. Lower the learning rate or look for "
            "a bad sample, then resume with --ckpt_path last; or let FiniteLossGuard(max_skipped_steps=N) "
            "drop up to N such steps")


def gradient_norm(module: torch.nn.Module) -> float | None:
    """The total 2-norm of the module's gradients (None when no parameter has one)."""
    grads = [p.grad.detach() for p in module.parameters() if p.grad is not None]
    if not grads:
        return None
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])))


def logged_terms(trainer: Trainer) -> str:
    """The values the module logged in the current training step (``train/loss=nan, train/kl=0.1``)."""
    terms = []
    for key, metric in getattr(trainer, "_results", {}).items():
        value = getattr(metric, "_forward_cache", None)  # the step's own value (Lightning's ResultMetric)
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            terms.append(f"{key.split('.', 1)[-1]}={float(value):.6g}")
    return ", ".join(terms) or "(none logged)"
