"""LightningCLI with S2DM's defaults and checks, without the FVD/KVD evaluation (:class:`TrainerCLI`).

Builds any LightningModule and LightningDataModule of a config by ``class_path`` and the Trainer;
``--ckpt_path`` follows the checkpoint-vs-config rule, ``fit --ckpt_path last`` resumes the newest
complete checkpoint, progress is printed as lines when stdout is not a terminal, and ``ddp_spawn``
with an unpicklable callback stops at once. :class:`s2dm_lightning.commands.lightning.S2DMCLI` adds the
evaluation; a command that trains something else than a video model (the synthetic feature network)
uses this class.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

import torch
import yaml
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import ProgressBar, WeightAveraging
from lightning.pytorch.cli import LightningCLI

from s2dm_lightning.callbacks.checkpoint_at_end import exit_if_interrupted
from s2dm_lightning.callbacks.fault_defaults import with_fault_callbacks
from s2dm_lightning.callbacks.progress import LineProgressBar, stdout_is_terminal
from s2dm_lightning.checkpoint_io import use_atomic_checkpoints
from s2dm_lightning.commands.checkpoint_config import (
    reconcile,
    refuse_mismatched_weights,
    refuse_other_geometry,
)
from s2dm_lightning.commands.run_folder import log_into_evaluated_run
from s2dm_lightning.commands.schedule_notice import unreached_validation_notice
from s2dm_lightning.resume import resolve_last
from s2dm_lightning.run_lock import claim_run_folder
from s2dm_lightning.strategy_check import reject_unpicklable_spawn


class TrainerCLI(LightningCLI):
    """LightningCLI with S2DM's defaults and checks: any LightningModule / LightningDataModule by class_path."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("auto_configure_optimizers", False)
        super().__init__(LightningModule, LightningDataModule, *args, **kwargs)

    def parse_arguments(self, parser, args) -> None:
        """Our commands hand their arguments over explicitly (``commands/__init__.py`` reads ``sys.argv`` once),
        so LightningCLI's warning about being given both ``args`` and ``sys.argv`` never applies."""
        if args is None:
            return super().parse_arguments(parser, args)
        argv, sys.argv = sys.argv, sys.argv[:1]
        try:
            super().parse_arguments(parser, args)
        finally:
            sys.argv = argv

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--progress_every_n_steps", type=int | None, default=None,
                            help="when stdout is not a terminal (a log file), print a progress line every N "
                                 "training steps (default: trainer.log_every_n_steps)")
        parser.add_argument("--ema", type=bool, default=True,
                            help="false: leave out the config's weight-averaging callbacks (EMAWeightAveraging), "
                                 "which hold a full copy of the module's weights")

    def _parse_ckpt_path(self) -> None:
        """``--ckpt_path CKPT``: the checkpoint-vs-config rule of :mod:`s2dm_lightning.commands.checkpoint_config`
        (replaces LightningCLI's silent merge of the checkpoint's hyperparameters over the config)."""
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not ckpt_path or not Path(ckpt_path).is_file():
            return
        self._checkpoint = torch.load(ckpt_path, weights_only=True, map_location="cpu", mmap=True)
        hparams = self._checkpoint.get("hyper_parameters")
        if not hparams:
            return
        dump = yaml.safe_load(self.parser.dump(self.config, skip_none=False, skip_link_targets=False))
        reconcile(dict(hparams), dump[subcommand]["model"], str(ckpt_path))

    def after_instantiate_classes(self) -> None:
        """Weights of the checkpoint that do not fit the config's network stop the command here, named."""
        super().after_instantiate_classes()
        checkpoint = getattr(self, "_checkpoint", None)
        if checkpoint is not None and "state_dict" in checkpoint:
            ckpt_path = self.config[self.config["subcommand"]]["ckpt_path"]
            refuse_mismatched_weights(checkpoint["state_dict"], self.model.state_dict(), str(ckpt_path))
            refuse_other_geometry(checkpoint, self.datamodule, str(ckpt_path))
            self._checkpoint = None

    def instantiate_trainer(self, **kwargs) -> Trainer:
        """The trainer, with :class:`LineProgressBar` when stdout is not a terminal (unless the config has its own),
        the fault callbacks (:func:`with_fault_callbacks`) and checkpoints written by rename."""
        bar = self._line_progress_bar()
        configured = self._get(self.config_init, "trainer", default={}).get("callbacks") or []
        configured = configured if isinstance(configured, list) else [configured]
        if self._get(self.config, "ema", True) is False:
            configured = [c for c in configured if not isinstance(c, WeightAveraging)]
        kwargs["callbacks"] = [*with_fault_callbacks(configured), *([bar] if bar is not None else [])]
        trainer = super().instantiate_trainer(**kwargs)
        use_atomic_checkpoints(trainer)
        return trainer

    def _line_progress_bar(self) -> LineProgressBar | None:
        trainer_config = self._get(self.config_init, "trainer", default={})
        callbacks = trainer_config.get("callbacks") or []
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        if (stdout_is_terminal() or trainer_config.get("enable_progress_bar") is False
                or any(isinstance(c, ProgressBar) for c in callbacks)):
            return None
        every = self._get(self.config, "progress_every_n_steps") or trainer_config.get("log_every_n_steps") or 50
        return LineProgressBar(every_n_steps=int(every))

    def before_instantiate_classes(self) -> None:
        """validate/test/predict of a run's checkpoint log into that run (``commands/run_folder.py``)."""
        if self.subcommand is not None:
            log_into_evaluated_run(self.subcommand, self.config[self.subcommand])

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        reject_unpicklable_spawn(self.trainer)  # ddp_spawn: a clear error now, not a pickling traceback later

    def fit(self, **kwargs) -> None:
        """``trainer.fit``; ``--ckpt_path last`` = the experiment's newest complete checkpoint (docs/resuming.md)."""
        with ExitStack() as held:  # the run folder's lock (s2dm_lightning/run_lock.py) until fit ends
            kwargs["ckpt_path"] = claim_run_folder(self.trainer, held,
                                                   lambda: resolve_last(self.trainer, kwargs.get("ckpt_path")))
            notice = unreached_validation_notice(self.trainer)
            if notice and self.trainer.is_global_zero:
                print(notice, file=sys.stderr, flush=True)
            try:
                self.trainer.fit(**kwargs)
            except SystemExit:  # Lightning's way out after SIGTERM / Ctrl-C: say where the checkpoint is
                exit_if_interrupted(self.trainer)
                raise
