"""Command line: ``python -m s2dm_lightning {fit,validate,test,predict,preprocess} --config ...``.

fit/validate/test/predict are LightningCLI's (jsonargparse parses and checks every key of
the YAML against the typed ``__init__`` arguments). ``preprocess`` parses the same config
and only runs the data module's flow preprocessing.
"""

from __future__ import annotations

import sys

from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI

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
        parser.add_argument("--n_runs", type=int, default=1,
                            help="test only: repeat generation with K seeds (model.evaluation_run = 0..K-1) "
                                 "and report the mean and std of FVD/KVD")

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


def _usage() -> str:
    lines = ["usage: python -m s2dm_lightning {fit,validate,test,predict,preprocess} --config CONFIG.yaml [...]"]
    lines += [f"  {name}: {text}" for name, text in EXTRA_SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(args: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if args is None else args)
    if argv and argv[0] == "sample":
        from s2dm_lightning.pipelines.sample_command import main as sample_main

        sample_main(argv[1:])
        return
    if argv and argv[0] == "preprocess":
        if any(a in ("-h", "--help") for a in argv[1:]):
            print(_usage())
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
    S2DMCLI(args=argv)


if __name__ == "__main__":
    main()
