"""``python -m s2dm_lightning evaluate --config CONFIG.yaml --videos FOLDER [--mapping CSV | --pattern REGEX]``.

FVD/KVD of a folder of videos made by any method, under the config's ``metrics:`` protocol and against its
dataset's real side, exactly as ``test`` scores our own: the config's data module and
:class:`~s2dm_lightning.evaluation.VideoMetricsCallback` run ``trainer.test`` with
:class:`~s2dm_lightning.evaluation.scored_videos.ScoredVideos` in place of the model, so the real statistics
(``--metrics.real_stats_file``), the feature network and the report are ``test``'s. The report also holds
``scored_videos``: where the videos came from. The model section of the config is not built.
"""

from __future__ import annotations

import argparse
import json

from s2dm_lightning.commands.errors import CommandLineError
from s2dm_lightning.commands.lightning import S2DMCLI
from s2dm_lightning.evaluation import VideoMetricsCallback
from s2dm_lightning.evaluation.report import write_report
from s2dm_lightning.evaluation.scored_videos import (
    ScoredVideos,
    assign_to_items,
    check_lengths,
    item_keys,
    list_scored_videos,
    matching_key,
    provenance,
)

HELP = """usage: python -m s2dm_lightning evaluate --config CONFIG.yaml --videos FOLDER [--mapping CSV | --pattern REGEX]
                                  [--metrics.protocol P --metrics.real_stats_file FILE ...]

FVD/KVD of the videos in FOLDER (.mp4 .gif .avi .webm .mov .mkv files, folders of .png/.jpg frames; any
size: made square and resized as the config's data are) against the config's real test side, under its
metrics: protocol, with test's report (docs/evaluation.md, "Scoring another method's videos").
The first data.num_frames frames of each video are scored; the number of videos is metrics.num_videos.
Options besides those of `test --help` (the model section is not built):
  --videos FOLDER     the videos to score
  --mapping CSV       columns file (relative to FOLDER) and video_id, or file, class and subject
  --pattern REGEX     score the entries whose whole name matches; groups (?P<video_id>...),
                      (?P<class>...), (?P<subject>...) label them"""


class EvaluateCLI(S2DMCLI):
    """The experiment's parser with evaluate's options, building the data module, the trainer and its callbacks
    (the metrics callback among them) but not the model."""

    def add_arguments_to_parser(self, parser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_argument("--videos", type=str, required=True, help="the folder of videos to score")
        parser.add_argument("--mapping", type=str | None, default=None, help="CSV: file,video_id or file,class,subject")
        parser.add_argument("--pattern", type=str | None, default=None, help="regex over the entries' names")

    def instantiate_classes(self) -> None:
        config = self.config.clone()
        config.model = None
        instantiate = getattr(self.parser, "instantiate", None) or self.parser.instantiate_classes
        self.config_init = instantiate(config)
        self.datamodule = self._get(self.config_init, "data")
        self.model = None
        self.trainer = self.instantiate_trainer()

    def after_instantiate_classes(self) -> None:
        """No model, so no checkpoint weights to check."""

    def _config_dict(self) -> dict | None:
        """The parsed config (no subcommand level: ``run=False``) as plain values, for the report."""
        import yaml

        return yaml.safe_load(self.parser.dump(self.config, skip_none=False))


def _options(argv: list[str]) -> argparse.Namespace:
    """--videos/--mapping/--pattern read before the full parse (the number of videos sets metrics.num_videos)."""
    parser = argparse.ArgumentParser(add_help=False)
    for name in ("--videos", "--mapping", "--pattern"):
        parser.add_argument(name)
    options, _ = parser.parse_known_args(argv)
    if options.videos is None:
        raise CommandLineError("evaluate needs --videos FOLDER (the videos to score); see `evaluate --help`")
    return options


def _test_video_ids(datamodule, count: int) -> list[str] | None:
    """The test video of each of ``count`` items (the test split cycled), or None if the data module cannot list it."""
    if not callable(getattr(datamodule, "prepare_data", None)) or not callable(getattr(datamodule, "setup", None)):
        return None
    datamodule.prepare_data()  # the flows: a video without one is left out of the test split by setup
    datamodule.setup("test")
    records = getattr(getattr(datamodule, "datasets", {}).get("test"), "records", None)
    if not records:
        return None
    return [records[i % len(records)].video_id for i in range(count)]


def main(argv: list[str]) -> None:
    """Score the videos ``--videos`` names under the config's protocol."""
    if any(a in ("-h", "--help") for a in argv):
        print(HELP)
        return
    options = _options(argv)
    videos = list_scored_videos(options.videos, options.mapping, options.pattern)
    if len(videos) < 2:
        raise CommandLineError(f"--videos {options.videos}: {len(videos)} video selected ({videos[0].path.name}); "
                               "FVD/KVD need at least 2")
    given = any(a.split("=")[0] == "--metrics.num_videos" for a in argv)
    cli = EvaluateCLI(args=argv if given else [*argv, f"--metrics.num_videos={len(videos)}"], run=False)
    (metrics,) = [c for c in cli.trainer.callbacks if isinstance(c, VideoMetricsCallback)]
    if metrics.num_videos != len(videos):
        raise CommandLineError(f"--metrics.num_videos={metrics.num_videos} but --videos {options.videos} holds "
                               f"{len(videos)} videos: leave metrics.num_videos out (it is the number of videos)")
    datamodule = cli.datamodule
    num_frames, resolution = int(datamodule.num_frames), int(datamodule.resolution)
    check_lengths(videos, num_frames)
    labelled = matching_key(videos[0]) is not None
    item_ids = _test_video_ids(datamodule, len(videos)) if labelled else None
    assigned = assign_to_items(videos, item_keys(videos, item_ids, getattr(datamodule, "video_groups", None)))
    model = ScoredVideos(assigned, num_frames, resolution, getattr(datamodule, "frame_geometry", "crop"))
    metrics.backbone  # noqa: B018 - without weights: stop before reading the data
    metrics.n_runs, metrics.run_config = 1, cli._config_dict()
    cli.trainer.test(model, datamodule=datamodule)
    report = metrics.last_report_path
    if report is not None and cli.trainer.is_global_zero:
        body = json.loads(report.read_text())
        notice = body.pop("notice")
        body["scored_videos"] = provenance(options.videos, videos, options.mapping, options.pattern)
        write_report(report, notice, body)
        print(f"evaluate: {len(videos)} videos of {options.videos} scored; report: {report}")
