"""Progress as plain lines, for output that is not a terminal (a SLURM log, ``> train.log``).

Lightning's rich and tqdm bars redraw one line in place: written to a file, rich shows nothing
until the end and tqdm a wall of carriage returns. :class:`LineProgressBar` prints one line
every ``every_n_steps`` optimizer steps instead::

    step 40/1200 | epoch 3 | 2.31 it/s | ETA 0:08:22 | train/loss 0.1432

and one line per validation / test / predict run. The CLI installs it when stdout is not a
terminal (``--progress_every_n_steps``); a config can also list it in ``trainer.callbacks``.
"""

from __future__ import annotations

import math
import sys
import time
from datetime import timedelta
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ProgressBar


def _format_metric(value: Any) -> str:
    value = value.item() if hasattr(value, "item") else value
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class LineProgressBar(ProgressBar):
    """One plain line every ``every_n_steps`` training steps (step/total, epoch, it/s, ETA, the
    progress-bar metrics such as ``train/loss``), and one line per evaluation run.

    Args:
        every_n_steps: print a training line every N optimizer steps (and at the last step).
    """

    def __init__(self, every_n_steps: int = 50) -> None:
        super().__init__()
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self._enabled = True
        self._last_step = 0
        self._last_time = 0.0
        self._eval_start = 0.0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def print(self, *args: Any, **kwargs: Any) -> None:
        if self._enabled:
            print(*args, **{"flush": True, **kwargs})

    def _metrics_text(self, trainer: L.Trainer, pl_module: L.LightningModule) -> str:
        metrics = {k: v for k, v in self.get_metrics(trainer, pl_module).items() if k != "v_num"}
        return " | ".join(f"{name} {_format_metric(value)}" for name, value in metrics.items())

    def _total_steps(self, trainer: L.Trainer) -> float:
        if trainer.max_steps is not None and trainer.max_steps > 0:
            return float(trainer.max_steps)
        try:
            return float(trainer.estimated_stepping_batches)
        except Exception:  # noqa: BLE001 - an unsized dataloader: no total, no ETA
            return math.inf

    # -- training ----------------------------------------------------------------------------------
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last_step, self._last_time = trainer.global_step, time.monotonic()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step, total = trainer.global_step, self._total_steps(trainer)
        if step == self._last_step or (step % self.every_n_steps and step < total):
            return
        now = time.monotonic()
        rate = (step - self._last_step) / max(now - self._last_time, 1e-9)
        self._last_step, self._last_time = step, now
        total_text = "?" if math.isinf(total) else str(int(total))
        eta = "?" if math.isinf(total) else str(timedelta(seconds=round((total - step) / rate)))
        parts = [f"step {step}/{total_text}", f"epoch {trainer.current_epoch}", f"{rate:.2f} it/s", f"ETA {eta}"]
        metrics = self._metrics_text(trainer, pl_module)
        self.print(" | ".join(parts + ([metrics] if metrics else [])))

    # -- evaluation: one line per run --------------------------------------------------------------
    def _eval_start_now(self, *_: Any) -> None:
        self._eval_start = time.monotonic()

    on_validation_start = on_test_start = on_predict_start = _eval_start_now

    def _eval_line(self, name: str, batches: Any, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        count = sum(batches) if isinstance(batches, list) else batches
        metrics = self._metrics_text(trainer, pl_module) if name != "predict" else ""
        seconds = time.monotonic() - self._eval_start
        text = f"{name} at step {trainer.global_step}: {count} batches in {seconds:.1f} s"
        self.print(text + (f" | {metrics}" if metrics else ""))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._eval_line("validation", trainer.num_val_batches, trainer, pl_module)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._eval_line("test", trainer.num_test_batches, trainer, pl_module)

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._eval_line("predict", trainer.num_predict_batches, trainer, pl_module)


def stdout_is_terminal() -> bool:
    """Whether stdout is an interactive terminal (where rich/tqdm bars redraw in place)."""
    return hasattr(sys.stdout, "isatty") and sys.stdout.isatty()
