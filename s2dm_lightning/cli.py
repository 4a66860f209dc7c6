"""Command line: ``python -m s2dm_lightning SUBCOMMAND --config ...`` (``--help`` lists them all).

fit/validate/test/predict are LightningCLI's (jsonargparse parses and checks every key of
the YAML against the typed ``__init__`` arguments). ``preprocess`` parses the same config
and only runs the data module's flow preprocessing; ``sample`` and ``export`` have their own
parsers. Errors of our classes reach the screen through :mod:`s2dm_lightning.commands.errors`.
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
from s2dm_lightning.commands.errors import run_with_clear_errors
from s2dm_lightning.evaluation import VideoMetricsCallback
from s2dm_lightning.resume import resolve_last
from s2dm_lightning.strategy_check import reject_unpicklable_spawn

EXTRA_SUBCOMMANDS = {
    "preprocess": "Compute and cache the flow/occlusion conditions of a dataset (no training).",
    "sample": "Two-stage text-to-video from --prompt (see `sample --help`; s2dm_lightning.pipelines).",
    "export": "Write a trained model as a self-contained folder: --config ... --ckpt_path CKPT|last --output_dir DIR.",
}


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
        parser.add_argument("--n_runs", type=int | None, default=None,
                            help="test only: repeat generation with K seeds (model.evaluation_run = 0..K-1) "
                                 "and report the mean and std of FVD/KVD; default: the metrics.protocol "
                                 "preset's (1; lvdm: 10)")
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
        n_runs = self._get(self.config, "n_runs", None)
        metrics = [callback for callback in self.trainer.callbacks if isinstance(callback, VideoMetricsCallback)]
        if n_runs is None:
            n_runs = metrics[0].protocol.n_runs if metrics else 1
        if int(n_runs) < 1:
            raise ValueError(f"--n_runs must be >= 1, got {n_runs}")
        n_runs = int(n_runs)
        for callback in metrics:
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


def subcommand_table() -> dict[str, str]:
    """Every subcommand with one line: LightningCLI's (the first sentence of the Trainer method's docstring,
    as LightningCLI's own help shows it), then ``EXTRA_SUBCOMMANDS``."""
    table = {}
    for name in LightningCLI.subcommands():
        paragraph = " ".join((getattr(Trainer, name).__doc__ or "").strip().split("\n\n")[0].split())
        table[name] = paragraph.split(". ")[0].rstrip(".") + "."
    return {**table, **EXTRA_SUBCOMMANDS}


def usage() -> str:
    """The top-level ``--help``: all subcommands, one line each."""
    table = subcommand_table()
    width = max(map(len, table))
    lines = [f"usage: python -m s2dm_lightning {{{','.join(table)}}} --config CONFIG.yaml [--key value ...]", "",
             "subcommands (SUBCOMMAND --help lists its options):"]
    lines += [f"  {name:<{width}}  {text}" for name, text in table.items()]
    return "\n".join(lines)


def main(args: list[str] | None = None) -> None:
    """Run one subcommand; an error of our classes is printed alone, as the last line (exit status 2)."""
    run_with_clear_errors(lambda: _run(list(sys.argv[1:] if args is None else args)))


def _run(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        if not argv:
            raise SystemExit(2)
        return
    if argv and argv[0] == "sample":
        from s2dm_lightning.pipelines.sample_command import main as sample_main

        sample_main(argv[1:])
        return
    if argv and argv[0] == "preprocess":
        if any(a in ("-h", "--help") for a in argv[1:]):
            print(usage())
            return
        # Parse the full experiment config (so the same YAML works), then preprocess only.
        # One process (no training here), so a 4-GPU config also preprocesses on a smaller machine.
        cli = S2DMCLI(args=[*argv[1:], "--trainer.devices=1", "--trainer.strategy=auto"], run=False)
        preprocess = getattr(cli.datamodule, "preprocess", None)
        if preprocess is None:
            raise SystemExit(f"preprocess: {type(cli.datamodule).__name__} has no preprocess() method")
        preprocess()
        model_preprocess = getattr(cli.model, "preprocess", None)  # e.g. S2DM's latent cache
        if model_preprocess is not None:
            model_preprocess(cli.datamodule)
        return
    if argv and argv[0] == "export":
        from s2dm_lightning.models.export import export_main

        export_main(argv[1:])
        return
    # args=None when they are sys.argv's: LightningCLI warns when it is given both
    S2DMCLI(args=None if argv == sys.argv[1:] else argv)


if __name__ == "__main__":
    main()
