"""fit/validate/test/predict: LightningCLI's subcommands (jsonargparse parses and checks every key of the YAML
against the typed ``__init__`` arguments), with S2DM's defaults and checks (:class:`S2DMCLI`).

``preprocess`` and ``export`` build their classes from the same config through :class:`S2DMCLI`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import yaml
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.cli import LightningCLI

from s2dm_lightning.callbacks.progress import LineProgressBar, stdout_is_terminal
from s2dm_lightning.commands.checkpoint_config import reconcile, refuse_mismatched_weights
from s2dm_lightning.evaluation import VideoMetricsCallback
from s2dm_lightning.resume import resolve_last
from s2dm_lightning.strategy_check import reject_unpicklable_spawn


class S2DMCLI(LightningCLI):
    """LightningCLI with S2DM's defaults: any LightningModule / LightningDataModule by class_path."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("auto_configure_optimizers", False)
        super().__init__(LightningModule, LightningDataModule, *args, **kwargs)

    def add_arguments_to_parser(self, parser) -> None:
        # FVD/KVD: the top-level `metrics:` section (metrics.i3d_weights, ...), a callback in every subcommand
        # that only acts in `test` (and in `fit` with metrics.val_every_n_rounds).
        parser.add_lightning_class_args(VideoMetricsCallback, "metrics")
        parser.add_argument("--n_runs", type=int, default=1,
                            help="test only: repeat generation with K seeds (model.evaluation_run = 0..K-1) "
                                 "and report the mean and std of FVD/KVD")
        parser.add_argument("--progress_every_n_steps", type=int | None, default=None,
                            help="when stdout is not a terminal (a log file), print a progress line every N "
                                 "training steps (default: trainer.log_every_n_steps)")

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
            self._checkpoint = None

    def instantiate_trainer(self, **kwargs) -> Trainer:
        """The trainer, with :class:`LineProgressBar` when stdout is not a terminal (unless the config has its own)."""
        bar = self._line_progress_bar()
        if bar is not None:
            configured = self._get(self.config_init, "trainer", default={}).get("callbacks") or []
            kwargs["callbacks"] = [*(configured if isinstance(configured, list) else [configured]), bar]
        return super().instantiate_trainer(**kwargs)

    def _line_progress_bar(self) -> LineProgressBar | None:
        trainer_config = self._get(self.config_init, "trainer", default={})
        callbacks = trainer_config.get("callbacks") or []
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        if (stdout_is_terminal() or trainer_config.get("enable_progress_bar") is False
                or any(isinstance(c, ProgressBar) for c in callbacks)):
            return None
        every = self._get(self.config, "progress_every_n_steps") or trainer_config.get("log_every_n_steps") or 50
        return LineProgressBar(every_n_steps=int(every))

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        reject_unpicklable_spawn(self.trainer)  # ddp_spawn: a clear error now, not a pickling traceback later

    def fit(self, **kwargs) -> None:
        """``trainer.fit``; ``--ckpt_path last`` = the experiment's newest complete checkpoint (docs/resuming.md)."""
        kwargs["ckpt_path"] = resolve_last(self.trainer, kwargs.get("ckpt_path"))
        self.trainer.fit(**kwargs)

    def test(self, **kwargs) -> list:
        """``trainer.test`` once per run of ``--n_runs`` (new sampling seeds each run); the metrics callback
        reports every run and their mean and std."""
        n_runs = self._get(self.config, "n_runs", 1)
        n_runs = 1 if n_runs is None else int(n_runs)
        if n_runs < 1:
            raise ValueError(f"--n_runs must be >= 1, got {n_runs}")
        for callback in self.trainer.callbacks:
            if isinstance(callback, VideoMetricsCallback):
                callback.backbone  # noqa: B018 - without I3D weights: stop before preparing data or generating
                callback.n_runs, callback.run_config = n_runs, self._config_dict()
        results = []
        for run in range(n_runs):
            kwargs["model"].evaluation_run = run
            results.append(self.trainer.test(**kwargs))
        return results

    def _config_dict(self) -> dict | None:
        """The parsed config of this subcommand as plain values (for the evaluation report)."""
        try:
            import yaml

            return yaml.safe_load(self._parser(self.subcommand).dump(self.config[self.subcommand], skip_none=False))
        except Exception as error:  # noqa: BLE001 - the report stays useful without the config
            print(f"warning: could not dump the config into the evaluation report: {error}", file=sys.stderr)
            return None


def main(argv: list[str]) -> None:
    """Run LightningCLI's subcommand ``argv[0]`` (fit, validate, test, predict) with the arguments after it."""
    # args=None when they are sys.argv's: LightningCLI warns when it is given both
    S2DMCLI(args=None if argv == sys.argv[1:] else argv)
