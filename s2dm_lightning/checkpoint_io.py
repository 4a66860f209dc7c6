"""Lightning checkpoints written by rename (:class:`AtomicCheckpointIO`), so a kill or a full disk mid-write
leaves the previous ``last.ckpt`` whole.

Lightning's ``TorchCheckpointIO`` serialises to memory and then writes the bytes straight into the
final name: a SIGKILL, an out-of-space error or a file-size limit during that write leaves a file cut
short under ``last.ckpt`` (the resolver of :mod:`s2dm_lightning.resume` then has to skip it, losing a
whole interval). Here the file goes through :func:`s2dm_lightning.io.atomic_torch_save` (temporary
file in the same folder, fsync, rename): the name holds the old checkpoint or the new one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch import Trainer

from s2dm_lightning.io import atomic_torch_save


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose local files are written by rename; remote (fsspec) paths as Lightning does."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None or not _is_local_file_protocol(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_torch_save(Path(path), checkpoint)
        return None


def use_atomic_checkpoints(trainer: Trainer) -> None:
    """Give the trainer's strategy :class:`AtomicCheckpointIO` unless the config chose a CheckpointIO plugin."""
    current = trainer.strategy._checkpoint_io
    if current is None or type(current) is TorchCheckpointIO:
        trainer.strategy.checkpoint_io = AtomicCheckpointIO()
