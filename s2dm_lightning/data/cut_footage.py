"""Long footage -> clips + ``metadata.csv``, the layout ``VideoFolderDataModule`` reads.

A metadata row is a whole video (the clip's frames are drawn from all of it), so a long recording is
cut first: consecutive runs of ``clip_frames`` frames (every ``stride`` frames) are written as H.264
mp4 files under ``<output_dir>/clips/`` and listed in ``<output_dir>/metadata.csv`` with one caption.
The video is decoded once, in order, with OpenCV, and only the frames of one clip are held at a time,
so footage of any length fits in memory. Every file is written atomically; an existing metadata.csv
keeps its other rows (those of this video's clips are replaced), so several recordings can be cut
into one dataset, one command each.
"""

from __future__ import annotations

import csv
import io
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from s2dm_lightning.data.datasets import REQUIRED_COLUMNS, SPLITS
from s2dm_lightning.data.video_io import VIDEO_SUFFIXES, VideoReadError
from s2dm_lightning.io import atomic_write_text, safe_file_stem
from s2dm_lightning.validation import check_choice, check_number
from s2dm_lightning.video_files import write_mp4

CLIP_FOLDER = "clips"


@dataclass(frozen=True)
class CutClip:
    """One clip written: its path relative to the dataset folder, first source frame, caption and split."""

    path: str
    start_frame: int
    caption: str
    split: str


def scaled_size(height: int, width: int, max_side: int | None) -> tuple[int, int]:
    """(height, width) with the longer side at most ``max_side`` (aspect kept, even numbers for H.264)."""
    if max_side is None or max(height, width) <= max_side:
        return height, width
    factor = max_side / max(height, width)
    return max(2, round(height * factor / 2) * 2), max(2, round(width * factor / 2) * 2)


def _frames(video: Path, max_side: int | None) -> Iterator[np.ndarray]:
    """The RGB frames of ``video`` in order, each scaled by :func:`scaled_size` (area interpolation)."""
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise VideoReadError(video, "OpenCV cannot open it (not a video, or a codec it lacks)")
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            height, width = scaled_size(*frame.shape[:2], max_side)
            if (height, width) != frame.shape[:2]:
                frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def _frames_per_second(video: Path) -> int:
    capture = cv2.VideoCapture(str(video))
    try:
        fps = capture.get(cv2.CAP_PROP_FPS)
    finally:
        capture.release()
    return max(1, round(fps)) if fps and fps > 0 else 8


def cut_footage(
    video: str | Path,
    output_dir: str | Path,
    caption: str,
    clip_frames: int = 32,
    stride: int | None = None,
    test_every: int = 0,
    split: str = "train",
    max_side: int | None = None,
) -> list[CutClip]:
    """Cut ``video`` into clips of ``clip_frames`` frames and list them in ``<output_dir>/metadata.csv``.

    Args:
        video: the long recording (any container OpenCV decodes: .mp4, .avi, .mov, .mkv).
        output_dir: the dataset folder (``data.init_args.root``); clips go to ``<output_dir>/clips/``.
        caption: the caption of every clip of this video.
        clip_frames: frames per clip (training draws ``num_frames`` of them, one per equal interval).
        stride: a clip starts every ``stride`` frames (default ``clip_frames``: back to back; smaller
            overlaps, larger leaves gaps). Frames after the last whole clip are left out.
        test_every: every ``test_every``-th clip (the 1st, (k+1)-th, ...: counted from 0) goes to the test
            split, which validation and ``predict`` use; 0 = none.
        split: the split of the other clips (train, val or test).
        max_side: scale frames so that the longer side is at most this many pixels (aspect kept), which
            makes the clips smaller and preprocessing faster; None = full size.

    Returns:
        The clips written, in order.
    """
    video, output_dir = Path(video), Path(output_dir)
    check_number("--clip_frames", clip_frames, at_least=2, note="a clip needs a first frame and a motion")
    check_number("--stride", stride, at_least=1, optional=True)
    check_number("--test_every", test_every, at_least=0)
    check_number("--max_side", max_side, at_least=8, optional=True)
    check_choice("--split", split, SPLITS)
    if not caption or not caption.strip():
        raise ValueError("--caption must be a non-empty text (the caption of every clip)")
    if not video.is_file():
        raise VideoReadError(video, "no such file")
    if video.suffix.lower() not in VIDEO_SUFFIXES:
        raise VideoReadError(video, f"unsupported suffix '{video.suffix}' (the datasets read {VIDEO_SUFFIXES})")
    stride = clip_frames if stride is None else stride
    fps = _frames_per_second(video)
    stem = safe_file_stem(video.stem)
    (output_dir / CLIP_FOLDER).mkdir(parents=True, exist_ok=True)
    clips: list[CutClip] = []
    window: deque[np.ndarray] = deque(maxlen=clip_frames)
    next_start, decoded = 0, 0
    for index, frame in enumerate(_frames(video, max_side)):
        decoded = index + 1
        if index >= next_start:
            window.append(frame)
        if len(window) == clip_frames:
            number = len(clips)
            relative = f"{CLIP_FOLDER}/{stem}_{next_start:06d}.mp4"
            write_mp4(output_dir / relative, np.stack(window), fps=fps)
            clip_split = "test" if test_every and number % test_every == test_every - 1 else split
            clips.append(CutClip(relative, next_start, caption.strip(), clip_split))
            next_start += stride
            for _ in range(min(stride, clip_frames)):
                window.popleft()
    if not clips:
        raise VideoReadError(video, f"{decoded} frames decoded, fewer than --clip_frames={clip_frames}")
    write_metadata(output_dir, clips)
    return clips


def write_metadata(output_dir: Path, clips: list[CutClip]) -> Path:
    """Add ``clips`` to ``<output_dir>/metadata.csv`` (created if absent); rows of the same path are replaced."""
    path = output_dir / "metadata.csv"
    rows: list[dict[str, str]] = []
    columns = list(REQUIRED_COLUMNS)
    if path.exists():
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            columns += [c for c in reader.fieldnames or [] if c not in columns]
            rows = list(reader)
    new_paths = {clip.path for clip in clips}
    rows = [row for row in rows if row.get("path") not in new_paths]
    rows += [{"path": clip.path, "caption": clip.caption, "split": clip.split} for clip in clips]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, text.getvalue())
