"""Lightning's EMA callback whose average is the live network until averaging starts (:class:`EMAWeightAveraging`).

Lightning's ``EMAWeightAveraging(update_starting_at_step=N)`` builds its averaged copy when ``fit`` begins
and first updates it at step N. Until then the copy still holds the INITIAL weights, yet validation, the
sample videos, every checkpoint's ``state_dict`` (which ``test``, ``predict``, ``export`` and ``--ckpt_path``
load) and the weights left in the module after ``fit`` are that copy: a run shorter than N gave pure noise
with no word why. Here the copy follows the live weights until the first update, so before the start
"the EMA weights" are the trained network, and from the start on it is Lightning's EMA unchanged (its first
update copies the live weights too, so nothing jumps at step N).
"""

from __future__ import annotations

import itertools
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import EMAWeightAveraging as LightningEMAWeightAveraging


class EMAWeightAveraging(LightningEMAWeightAveraging):
    """``lightning.pytorch.callbacks.EMAWeightAveraging`` (same arguments) whose averaged copy equals the live
    weights until its first update (``update_starting_at_step`` / ``update_starting_at_epoch``).

    The copy is refreshed only where it is used (a validation epoch, a checkpoint, the end of ``fit``), not
    every step. Outside ``fit`` (test, predict: the checkpoint's ``state_dict`` already holds the averaged
    weights) it does nothing, without Lightning's warning that its state cannot be restored there.
    """

    def averaging_started(self) -> bool:
        """Whether the averaged copy holds an average (at least one update), not just a copy of the start."""
        return self._average_model is not None and int(self._average_model.n_averaged) > 0

    def _follow_live_weights(self, pl_module: pl.LightningModule) -> None:
        """Before the first update: the averaged copy := the live weights (parameters and buffers)."""
        if self._average_model is None or self.averaging_started():
            return
        average = itertools.chain(self._average_model.module.parameters(), self._average_model.module.buffers())
        live = itertools.chain(pl_module.parameters(), pl_module.buffers())
        for average_tensor, live_tensor in zip(average, live, strict=True):
            average_tensor.data.copy_(live_tensor.data)

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._follow_live_weights(pl_module)
        super().on_validation_epoch_start(trainer, pl_module)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        self._follow_live_weights(pl_module)
        super().on_save_checkpoint(trainer, pl_module, checkpoint)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._follow_live_weights(pl_module)
        super().on_train_end(trainer, pl_module)

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        if self._average_model is None:
            return  # test/predict/validate: the module already got the checkpoint's (averaged) state_dict
        super().on_load_checkpoint(trainer, pl_module, checkpoint)
