"""Footage that decodes but would train or drive a model wrongly, named with what is done about it.

Each check returns a sentence naming the file and what was done, or None when all is well; the
callers decide whether it is an error or a note (``preprocess`` lists notes and failures in its
summary, by video; ``sample --motion_from`` raises errors and warns notes):

- :func:`constant_first_frame`: frame 0 is every flow's reference; a constant frame (black, a
  fade-in, a title card in one colour) gives all-zero flows, i.e. a "video" that does not move.
  An error: preprocess leaves the video out (nothing cached), ``--motion_from`` refuses it.
- :func:`frame_count_mismatch`: the container's header promises more (or fewer) frames than decode,
  typically a truncated download. A note: the frames that decode are used.
- :func:`short_video`: fewer frames than a clip needs; its clips repeat frames. A note.

A frame in the middle that does not decode is an error of the reader (``video_io.VideoReadError``
names the frame); nothing is cached for that video.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

CONSTANT_LEVELS = 2  # a frame whose grey levels span at most this is constant (MJPG noise on black is 0-1)


def constant_first_frame(gray: np.ndarray, path: str | Path) -> str | None:
    """Why the first of uint8 gray frames (L, h, w) of ``path`` cannot be the flows' reference, or None."""
    first = gray[0]
    low, high = int(first.min()), int(first.max())
    if high - low > CONSTANT_LEVELS:
        return None
    return (f"'{path}': its first frame is constant (grey levels {low}-{high} everywhere), so every flow from it "
            "is zero and the video would not move; cut the blank lead-in (e.g. ffmpeg -ss 1 -i in.mp4 out.mp4) "
            "or leave the video out")


def header_frame_count(path: str | Path) -> int | None:
    """The frame count the video file's header states (OpenCV's CAP_PROP_FRAME_COUNT), None if it states none."""
    path = Path(path)
    if path.is_dir():
        return None
    capture = cv2.VideoCapture(str(path))
    try:
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT) if capture.isOpened() else 0
    finally:
        capture.release()
    return int(count) if count and count > 0 else None


def frame_count_mismatch(path: str | Path, decoded: int) -> str | None:
    """A note when the header of ``path`` states another frame count than the ``decoded`` frames, else None."""
    header = header_frame_count(path)
    if header is None or header == decoded:
        return None
    return (f"'{path}': its header states {header} frames but {decoded} decode (a truncated or damaged file?); "
            f"the {decoded} that decode are used")


def short_video(path: str | Path, available: int, num_frames: int, key: str = "num_frames") -> str | None:
    """A note when ``path`` has fewer frames than a clip of ``num_frames`` (``key`` names that setting), else None."""
    if available >= num_frames:
        return None
    return (f"'{path}' has {available} frames, fewer than {key}={num_frames}: its clips repeat frames "
            f"(frame i is frame floor(i * {available} / {num_frames})), so the motion stalls in steps")
