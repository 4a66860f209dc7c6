"""A notice when ``fit`` resumes mid-epoch from a checkpoint that holds no position of the training data loader.

The datamodules' training loaders save their position (torchdata's ``StatefulDataLoader``, litdata's
``StreamingDataLoader``), and Lightning stores it in every checkpoint, so a resumed run continues the epoch with
the clips an unbroken run draws (docs/resuming.md). A checkpoint written before that, or by a loader without
the state, resumes as it always did: the rest of the epoch is a fresh shuffle. That is said once, here, instead
of silently training on another sequence.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer


def _loaders(train_dataloader: Any) -> list[Any]:
    if isinstance(train_dataloader, dict):
        return [loader for value in train_dataloader.values() for loader in _loaders(value)]
    if isinstance(train_dataloader, (list, tuple)):
        return [loader for value in train_dataloader for loader in _loaders(value)]
    return [train_dataloader]


def _is_resumable(loader: Any) -> bool:
    return callable(getattr(loader, "state_dict", None)) and callable(getattr(loader, "load_state_dict", None))


class DataOrderNotice(Callback):
    """Prints ``resume: NOTICE: ...`` when the checkpoint fit resumes from lacks the training loader's position
    although the loader could have saved it, and the checkpoint is not at the end of an epoch."""

    def __init__(self) -> None:
        self._checkpoint_has_loader_state: bool | None = None  # None: not resuming

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        fit_loop = checkpoint.get("loops", {}).get("fit_loop", {}).get("state_dict", {})
        self._checkpoint_has_loader_state = bool(fit_loop.get("combined_loader"))

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._checkpoint_has_loader_state is not False or not trainer.is_global_zero:
            return
        if not all(_is_resumable(loader) for loader in _loaders(trainer.train_dataloader)):
            return  # Lightning warns itself that such a loader is not resumable
        batches = trainer.num_training_batches
        if batches != float("inf") and trainer.global_step % math.ceil(batches / trainer.accumulate_grad_batches) == 0:
            return  # an end-of-epoch checkpoint: the next epoch starts afresh in either case
        print(f"resume: NOTICE: the checkpoint '{trainer.ckpt_path}' holds no position of the training data loader "
              "(written before the data order was saved): the rest of its epoch is a fresh shuffle, not the clips "
              "the interrupted run would have drawn; the checkpoints written from now on hold it",
              file=sys.stderr, flush=True)
