"""fit/validate/test/predict: LightningCLI's subcommands (jsonargparse parses and checks every key of the YAML
against the typed ``__init__`` arguments), with S2DM's defaults and checks and the FVD/KVD evaluation
(:class:`S2DMCLI`).

``preprocess`` and ``export`` build their classes from the same config through :class:`S2DMCLI`.
"""

from __future__ import annotations

import sys

from s2dm_lightning.commands.trainer_cli import TrainerCLI
from s2dm_lightning.evaluation import VideoMetricsCallback


class S2DMCLI(TrainerCLI):
    """:class:`~s2dm_lightning.commands.trainer_cli.TrainerCLI` with the FVD/KVD evaluation: the ``metrics:``
    section and ``--n_runs``."""

    def add_arguments_to_parser(self, parser) -> None:
        # FVD/KVD: the top-level `metrics:` section (metrics.i3d_weights, ...), a callback in every subcommand
        # that only acts in `test` (and in `fit` with metrics.val_every_n_rounds).
        parser.add_lightning_class_args(VideoMetricsCallback, "metrics")
        parser.add_argument("--n_runs", type=int | None, default=None,
                            help="test only: repeat generation with K seeds (model.evaluation_run = 0..K-1) "
                                 "and report the mean and std of FVD/KVD; default: the metrics.protocol "
                                 "preset's (1; lvdm: 10)")
        super().add_arguments_to_parser(parser)

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


def main(argv: list[str]) -> None:
    """Run LightningCLI's subcommand ``argv[0]`` (fit, validate, test, predict) with the arguments after it."""
    # args=None when they are sys.argv's: LightningCLI warns when it is given both
    S2DMCLI(args=None if argv == sys.argv[1:] else argv)
