"""Reading videos from a folder of frames or from a video file.

A video is returned as a uint8 array of shape (L, H, W, 3) in RGB order. Two sources:

- a folder of image frames (``*.png``, ``*.jpg``, ``*.jpeg``), in natural sort order
  (``img_2.jpg`` before ``img_10.jpg``), read with OpenCV;
- a video file (``.mp4``, ``.avi``, ``.mov``, ``.mkv``), read with decord.

Every failure raises :class:`VideoReadError` with the path and the reason, so that a
corrupt file in a dataset of a thousand videos can be found at once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")


class VideoReadError(RuntimeError):
    """A video (file or frame folder) could not be read; the message names the path and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read video '{self.path}': {reason}")


def _natural_key(name: str) -> list[object]:
    # Split digits from text so that frame_2 sorts before frame_10.
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_frame_files(folder: str | Path) -> list[Path]:
    """The image files of a frame folder in natural sort order."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: _natural_key(p.name))


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise VideoReadError(path, "no such file or folder")


def _read_image(path: Path) -> np.ndarray:
    # cv2.imread returns None (no exception) for unreadable or truncated files.
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise VideoReadError(path, "image file is corrupt or not a supported image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _folder_frames(folder: Path) -> list[Path]:
    files = list_frame_files(folder)
    if not files:
        raise VideoReadError(folder, f"folder holds no frames with suffix {'/'.join(IMAGE_SUFFIXES)}")
    return files


def _open_decord(path: Path):
    try:
        import decord
    except ImportError as error:  # pragma: no cover - decord is a declared dependency
        raise VideoReadError(path, f"decord is not installed ({error})") from error
    try:
        return decord.VideoReader(str(path), num_threads=1)
    except Exception as error:  # decord raises plain RuntimeError/DECORDError
        raise VideoReadError(
            path, f"video file is corrupt or unsupported ({str(error).splitlines()[0]})"
        ) from error


def _check_indices(path: Path, indices: Sequence[int], length: int) -> list[int]:
    indices = [int(i) for i in indices]
    bad = [i for i in indices if not 0 <= i < length]
    if bad:
        raise VideoReadError(path, f"frame indices {bad[:5]} out of range for a video of {length} frames")
    return indices


def count_frames(path: str | Path) -> int:
    """Number of frames: a directory listing for frame folders, the container index for video files."""
    path = Path(path)
    _check_exists(path)
    if path.is_dir():
        return len(_folder_frames(path))
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise VideoReadError(
            path, f"unsupported suffix '{path.suffix}' (expected a frame folder or {VIDEO_SUFFIXES})"
        )
    return len(_open_decord(path))


def crop_frames(frames: np.ndarray, crop: Sequence[int] | None, path: str | Path = "") -> np.ndarray:
    """Frames (L, H, W, 3) cut to ``crop`` = (top, bottom, left, right) pixels, rows top:bottom, columns left:right.

    The box is clipped to the frame (as LFDM does); an empty result raises VideoReadError.
    """
    if crop is None:
        return frames
    if len(crop) != 4:
        raise ValueError(f"crop must be (top, bottom, left, right), got {tuple(crop)}")
    height, width = frames.shape[1:3]
    top, bottom, left, right = (int(v) for v in crop)
    top, left = max(0, top), max(0, left)
    bottom, right = min(height, bottom), min(width, right)
    if bottom <= top or right <= left:
        raise VideoReadError(
            path, f"crop (top, bottom, left, right)={tuple(crop)} leaves nothing of its {width}x{height} frames"
        )
    return np.ascontiguousarray(frames[:, top:bottom, left:right])


def read_video(
    path: str | Path, indices: Sequence[int] | None = None, crop: Sequence[int] | None = None
) -> np.ndarray:
    """Read a video as uint8 RGB (L, H, W, 3); with ``indices`` only those frames (in that order).

    ``crop`` = (top, bottom, left, right) cuts every frame to that box (see :func:`crop_frames`).
    """
    if crop is not None:
        return crop_frames(read_video(path, indices), crop, path)
    path = Path(path)
    _check_exists(path)
    if path.is_dir():
        files = _folder_frames(path)
        if indices is not None:
            files = [files[i] for i in _check_indices(path, indices, len(files))]
        frames = [_read_image(f) for f in files]
        shapes = {f.shape for f in frames}
        if len(shapes) > 1:
            raise VideoReadError(path, f"frames have different sizes {sorted(shapes)}")
        return np.stack(frames)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise VideoReadError(
            path, f"unsupported suffix '{path.suffix}' (expected a frame folder or {VIDEO_SUFFIXES})"
        )
    reader = _open_decord(path)
    length = len(reader)
    if length == 0:
        raise VideoReadError(path, "video file holds no frames")
    wanted = list(range(length)) if indices is None else _check_indices(path, indices, length)
    try:
        frames = reader.get_batch(wanted).asnumpy()
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise RuntimeError(f"decoded frames have shape {frames.shape}")
    except Exception as error:
        # decord 0.6 mis-handles row padding for some widths (e.g. 48 px MJPG gives a
        # 4-channel size mismatch); OpenCV reads those files correctly.
        frames = _read_with_opencv(path, wanted, first_error=error)
    return np.ascontiguousarray(frames, dtype=np.uint8)


def _read_with_opencv(path: Path, wanted: list[int], first_error: Exception) -> np.ndarray:
    capture = cv2.VideoCapture(str(path))
    decoded: list[np.ndarray] = []
    try:
        while capture.isOpened():
            ok, frame = capture.read()
            if not ok:
                break
            decoded.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    if not decoded or max(wanted) >= len(decoded):
        reason = str(first_error).splitlines()[0] if str(first_error) else type(first_error).__name__
        raise VideoReadError(path, f"decoding failed (decord: {reason}; OpenCV read {len(decoded)} frames)")
    return np.stack([decoded[i] for i in wanted])
