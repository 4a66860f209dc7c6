"""What the demo accepts from a visitor: the upload's size, the video's decoded size, the queue's length.

A video file is small and its frames are not: 40 KB of H.264 can decode to gigabytes (1000 frames of a flat
4K picture compress to almost nothing). So an upload is checked twice before its frames are read:

1. its size on disk (``max_upload_mb``; Gradio's own ``max_file_size`` refuses bigger uploads already at
   the upload, this check also covers files that reach the handler another way);
2. its decoded size, frames x height x width (``max_decoded_megapixels``), first as the container header
   states it, BEFORE anything is decoded, then while decoding: the frames are walked once with OpenCV
   (decoded, never converted to RGB), adding up each decoded frame's pixels, and the walk stops as soon
   as the sum passes the limit, so a header that understates the frames or their size is caught too.

The limit is on the whole video: reading the few frames a driving clip needs still makes the decoder
walk up to them. The default, 500 megapixels (1.5 GB as RGB), is ~8 s of 1080p at 30 fps or ~18 s of
720p: a driving clip, not a film. The queue bound (``max_queue`` waiting requests, one generating at a
time) is Gradio's ``queue(max_size=...)``; a visitor past it is told the queue is full.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2

MEGA = 1_000_000


class DemoLimitError(ValueError):
    """An upload past a limit; the message is shown in the page as it is (like ``generate.DemoInputError``)."""


@dataclass(frozen=True)
class DemoLimits:
    """The demo's bounds (the ``demo`` command's options of the same names)."""

    max_upload_mb: float = 50.0
    max_decoded_megapixels: float = 500.0
    max_queue: int = 8

    def describe(self) -> str:
        return f"up to {self.max_upload_mb:g} MB, {self.max_decoded_megapixels:g} megapixels decoded"


def check_upload_size(path: str | Path, limits: DemoLimits) -> None:
    """A DemoLimitError naming the file when it is bigger than ``max_upload_mb``."""
    size = Path(path).stat().st_size
    if size > limits.max_upload_mb * MEGA:
        raise DemoLimitError(
            f"'{Path(path).name}' is {size / MEGA:.2f} MB ({size:,} bytes); this demo accepts uploads of up to "
            f"{limits.max_upload_mb:g} MB (demo --max_upload_mb): cut or re-encode it smaller")


def _too_big(name: str, frames: int, height: int, width: int, limits: DemoLimits, how: str) -> DemoLimitError:
    return DemoLimitError(
        f"'{name}' {how} ({frames} frames of {width} x {height}); this demo decodes up to "
        f"{limits.max_decoded_megapixels:g} megapixels of a video, frames x height x width (demo "
        "--max_decoded_megapixels): cut it shorter or scale it down (e.g. ffmpeg -i IN -t 5 -vf scale=256:-2 OUT.mp4)")


def header_size(path: str | Path) -> tuple[int, int, int]:
    """(frames, height, width) as the container states them, nothing decoded (0 where it states none)."""
    capture = cv2.VideoCapture(str(path))
    try:
        return (max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)))
    finally:
        capture.release()


def check_decoded_size(path: str | Path, limits: DemoLimits) -> None:
    """A DemoLimitError naming the file when the header's frames x height x width pass the limit, or when
    decoding does (module doc). Frame folders are not uploads and are not checked."""
    path = Path(path)
    if path.is_dir():
        return
    budget = limits.max_decoded_megapixels * MEGA
    frames, height, width = header_size(path)
    if frames * height * width > budget:
        raise _too_big(path.name, frames, height, width, limits,
                       f"is {frames * height * width / MEGA:,.0f} megapixels by its header")
    capture = cv2.VideoCapture(str(path))
    decoded, count = 0, 0
    try:
        while capture.grab():  # decodes the frame; the size is the decoder's, not the header's
            count += 1
            height, width = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
            decoded += height * width
            if decoded > budget:
                raise _too_big(path.name, count, height, width, limits,
                               f"decodes past {limits.max_decoded_megapixels:g} megapixels at frame {count}, "
                               f"more than its header states")
    finally:
        capture.release()
