"""``python -m s2dm_lightning cut --video LONG.mp4 --output_dir DATA --caption TEXT``: footage -> clips + metadata.csv.

The work is :func:`s2dm_lightning.data.cut_footage.cut_footage`; this module only parses the arguments
(jsonargparse: ``--help`` lists them with that function's docstring) and turns a bad value or an
unreadable video into one clear error line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from s2dm_lightning.commands.errors import CommandLineError
from s2dm_lightning.data.cut_footage import cut_footage
from s2dm_lightning.data.video_io import VideoReadError


def cut(
    video: str,
    output_dir: str,
    caption: str,
    clip_frames: int = 32,
    stride: int | None = None,
    test_every: int = 0,
    split: str = "train",
    max_side: int | None = None,
) -> Path:
    """Cut a long video into clips of --clip_frames frames under OUTPUT_DIR/clips/ and list them in
    OUTPUT_DIR/metadata.csv (the data.init_args.root of configs/own_videos.yaml).

    Args:
        video: the long recording (.mp4, .avi, .mov, .mkv).
        output_dir: the dataset folder; an existing metadata.csv keeps its other rows.
        caption: the caption of every clip of this video.
        clip_frames: frames per clip.
        stride: a clip starts every STRIDE frames (default: --clip_frames, back to back).
        test_every: every N-th clip goes to the test split (validation and predict use it); 0 = none.
        split: the split of the other clips: train, val or test.
        max_side: scale frames so that the longer side is at most this (aspect kept); default: full size.
    """
    try:
        clips = cut_footage(video, output_dir, caption, clip_frames=clip_frames, stride=stride,
                            test_every=test_every, split=split, max_side=max_side)
    except (ValueError, VideoReadError) as error:
        raise CommandLineError(str(error)) from error
    tested = sum(clip.split == "test" for clip in clips)
    print(f"wrote {len(clips)} clips of {clip_frames} frames ({tested} in the test split) to "
          f"{Path(output_dir) / 'clips'} and listed them in {Path(output_dir) / 'metadata.csv'}")
    return Path(output_dir)


def main(argv: list[str] | None = None) -> Path:
    """Parse ``cut``'s arguments and run it."""
    from jsonargparse import CLI

    return CLI(cut, args=list(sys.argv[1:] if argv is None else argv), as_positional=False,
               prog="python -m s2dm_lightning cut")
