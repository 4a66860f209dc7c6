"""``python -m s2dm_lightning pack --config CONFIG.yaml --output_dir DIR [--clips_per_video N ...]``: shards.

Parses the experiment config like ``preprocess`` (only the data module is built), computes the missing
flows, then writes the training clips (and the validation clips) as litdata chunks under ``DIR/train`` and
``DIR/val`` (:mod:`s2dm_lightning.data.shards`), to train from with
``s2dm_lightning.data.streaming.StreamingVideoDataModule`` (configs/synthetic_streaming.yaml).
"""

from __future__ import annotations

from s2dm_lightning.commands.errors import CommandLineError
from s2dm_lightning.commands.preprocess import DataOnlyCLI

HELP = """usage: python -m s2dm_lightning pack --config CONFIG.yaml --output_dir DIR [--key value ...]

Write the config's dataset as streaming shards (litdata chunks; needs the `stream` extra):
DIR/train (clips_per_video clips of every training video) and DIR/val (the validation clips).
Options besides those of `fit --help`:
  --output_dir DIR        where the shard set goes (replaced if it exists); upload it as is to an object store
  --clips_per_video N     training clips per video, each with its own random frames (default 1)
  --pack_seed S           seed of the training clips' frame draws (default 0)
  --chunk_bytes SIZE      size of a chunk file (default 64MB)
  --pack_workers N        processes writing chunks (default 1; the chunks then differ with N)"""


class PackCLI(DataOnlyCLI):
    """The experiment's parser with pack's own options."""

    def add_arguments_to_parser(self, parser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_argument("--output_dir", type=str, required=True, help="where the shard set goes")
        parser.add_argument("--clips_per_video", type=int, default=1, help="training clips per video")
        parser.add_argument("--pack_seed", type=int, default=0, help="seed of the training clips' frame draws")
        parser.add_argument("--chunk_bytes", type=str, default="64MB", help="size of a chunk file")
        parser.add_argument("--pack_workers", type=int, default=1, help="processes writing chunks")


def main(argv: list[str]) -> None:
    """Pack the dataset of the config ``argv`` names."""
    if any(a in ("-h", "--help") for a in argv):
        print(HELP)
        return
    from s2dm_lightning.data.shards import pack_split, require_litdata

    require_litdata()
    cli = PackCLI(args=argv, run=False)
    datamodule = cli.datamodule
    if not callable(getattr(datamodule, "preprocess", None)) or not hasattr(datamodule, "flow_settings"):
        raise CommandLineError(f"pack: {type(datamodule).__name__} is not a video folder datamodule "
                               "(s2dm_lightning.data.VideoDataModule); pack a config whose data it is")
    options = {name: cli.config.get(name) for name in ("output_dir", "clips_per_video", "pack_seed",
                                                        "chunk_bytes", "pack_workers")}
    if options["clips_per_video"] < 1 or options["pack_workers"] < 1:
        raise CommandLineError(f"pack: --clips_per_video={options['clips_per_video']} and --pack_workers="
                               f"{options['pack_workers']} must both be at least 1")
    datamodule.preprocess()
    datamodule.setup("fit")
    for split in ("train", "val"):
        if split == "val" and not datamodule.datasets["val"].records:
            continue
        target = pack_split(datamodule, split, options["output_dir"], options["clips_per_video"],
                            options["pack_seed"], options["chunk_bytes"], options["pack_workers"])
        print(f"pack: wrote the {split} clips to {target}")
