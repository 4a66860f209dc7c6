"""``python -m s2dm_lightning cut --video LONG.mp4 --output_dir DATA --caption TEXT``: footage -> clips + metadata.csv.

The work and the options (``--help`` lists them with its docstring) are those of
:func:`s2dm_lightning.data.cut_footage.cut_footage`; this module parses them, prints what was written
and turns a bad value or an unreadable video into one clear error line.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from s2dm_lightning.commands.errors import CommandLineError
from s2dm_lightning.data.cut_footage import CLIP_FOLDER, cut_footage
from s2dm_lightning.data.video_io import VideoReadError


@functools.wraps(cut_footage)  # its signature and docstring are the command's options and help
def cut(*args, **kwargs) -> Path:
    try:
        clips = cut_footage(*args, **kwargs)
    except (ValueError, VideoReadError) as error:
        raise CommandLineError(str(error)) from error
    output_dir = Path(kwargs["output_dir"])
    tested = sum(clip.split == "test" for clip in clips)
    print(f"wrote {len(clips)} clips of {kwargs.get('clip_frames', 32)} frames ({tested} in the test split) to "
          f"{output_dir / CLIP_FOLDER} and listed them in {output_dir / 'metadata.csv'}")
    return output_dir


def main(argv: list[str] | None = None) -> Path:
    """Parse ``cut``'s arguments and run it."""
    from jsonargparse import CLI

    return CLI(cut, args=list(sys.argv[1:] if argv is None else argv), as_positional=False,
               prog="python -m s2dm_lightning cut")
