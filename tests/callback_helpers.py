"""Test callbacks given to the CLI by class_path (importable by spawned DDP workers too)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import EMAWeightAveraging


class NoiseRecorder(L.Callback):
    """Writes the first nu each rank draws in training to ``<out_dir>/nu_rank<r>.pt``.

    It wraps ``sample_video_noise`` as S2DM's training step calls it, in the process that
    trains (a spawned DDP worker), and destroys the process group at teardown: Lightning
    under pytest otherwise aborts now and then at interpreter exit.

    Args:
        out_dir: folder for the per-rank files.
    """

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self._original = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        from s2dm_lightning.models import s2dm

        original = self._original = s2dm.sample_video_noise
        path = Path(self.out_dir) / f"nu_rank{trainer.global_rank}.pt"

        def recording(*args, **kwargs):
            nu = original(*args, **kwargs)
            if not path.exists():
                torch.save(nu.detach().cpu(), path)
            return nu

        s2dm.sample_video_noise = recording

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        from s2dm_lightning.models import s2dm

        if self._original is not None:
            s2dm.sample_video_noise = self._original
        if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


class ResumeProbe(L.Callback):
    """Saves, at the start of training (after a checkpoint is restored), the step and the EMA weights.

    Args:
        out_file: where to ``torch.save`` {"global_step", "ema", "current"}.
    """

    def __init__(self, out_file: str) -> None:
        self.out_file = out_file

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        ema = next(cb for cb in trainer.callbacks if isinstance(cb, EMAWeightAveraging))
        average = ema._average_model.module.state_dict()
        torch.save({
            "global_step": trainer.global_step,
            "ema": {k: v.detach().clone() for k, v in average.items()},
            "current": {k: v.detach().clone() for k, v in pl_module.state_dict().items()},
        }, self.out_file)


class WeightProbe(L.Callback):
    """Saves the module's weights at the start of fit (the initial ones), after every training batch (the last
    one kept: the live weights) and at the start of every validation epoch (what validation and the sample
    videos use; listed after the EMA callback, so after it swapped its copy in), to ``out_file`` at teardown.

    Args:
        out_file: where to ``torch.save`` {"initial", "live", "validation"}.
    """

    def __init__(self, out_file: str) -> None:
        self.out_file = out_file
        self.weights: dict[str, dict[str, torch.Tensor]] = {}

    def _keep(self, name: str, pl_module: L.LightningModule) -> None:
        self.weights[name] = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._keep("initial", pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._keep("live", pl_module)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._keep("validation", pl_module)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        torch.save(self.weights, self.out_file)
