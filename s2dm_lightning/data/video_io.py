"""Reading videos from a folder of frames or from a video file.

A video is returned as a uint8 array of shape (L, H, W, 3) in RGB order. Two sources:

- a folder of image frames (``*.png``, ``*.jpg``, ``*.jpeg``), in natural sort order
  (``img_2.jpg`` before ``img_10.jpg``), read with OpenCV;
- a video file (``.mp4``, ``.avi``, ``.mov``, ``.mkv``, ``.webm``), read with decord: ``read_video(path, indices)``
  decodes only those frames (``get_batch`` seeks); where decord fails, OpenCV grabs past the other
  frames without converting them and retrieves only the wanted ones, and a frame that does not
  decode is named (``frame N does not decode``).

Every failure raises :class:`VideoReadError` with the path and the reason, so that a
corrupt file in a dataset of a thousand videos can be found at once. That includes a
truncated JPEG or PNG frame, which OpenCV would decode into a grey-filled image with no
more than a libjpeg line on stderr: a frame file must end with its format's end marker.

:func:`read_gray_video` is the flow estimator's reader: gray frames at the size the estimator
needs, decoding no more than that (JPEG frames at 1/2, 1/4 or 1/8 scale by libjpeg's DCT
scaling, video files read in order with OpenCV, which decodes MJPG 4-5x faster than decord here).

A crop box (top, bottom, left, right) is given as fractions of the frame (every value
<= 1, e.g. (0, 1, 0.24375, 0.76875)), which fits any frame size, or in pixels (any value
> 1), which must lie inside the frame.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from s2dm_lightning.data.geometry import kept_box, pad_to_square, padded_shape, resize_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


class VideoReadError(RuntimeError):
    """A video (file or frame folder) could not be read; the message names the path and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read video '{self.path}': {reason}")


def natural_key(name: str) -> list[object]:
    # Split digits from text so that frame_2 sorts before frame_10.
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_frame_files(folder: str | Path) -> list[Path]:
    """The image files of a frame folder in natural sort order."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: natural_key(p.name))


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise VideoReadError(path, "no such file or folder")


JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"
PNG_SIGNATURE, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"  # IEND chunk type + its fixed CRC
TAIL_BYTES = 64


def image_file_problem(head: bytes, tail: bytes, suffix: str) -> str | None:
    """Why a JPEG/PNG file whose first and last bytes are ``head`` and ``tail`` is incomplete; None if it is whole.

    A JPEG ends with the end-of-image marker FF D9 (zero padding after it is tolerated),
    a PNG with its IEND chunk; a file cut short ends in the middle of its data.
    """
    suffix = suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        if not head.startswith(JPEG_START):
            return "not a JPEG file (no start-of-image marker)"
        if not tail.rstrip(b"\x00").endswith(JPEG_END):
            return "truncated JPEG file (it does not end with the end-of-image marker FF D9)"
    elif suffix == ".png":
        if not head.startswith(PNG_SIGNATURE):
            return "not a PNG file (no PNG signature)"
        if not tail.endswith(PNG_END):
            return "truncated PNG file (it does not end with the IEND chunk)"
    return None


def _check_image_file(path: Path) -> None:
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(PNG_SIGNATURE))
            handle.seek(max(0, handle.seek(0, 2) - TAIL_BYTES))
            tail = handle.read()
    except OSError as error:
        raise VideoReadError(path, f"cannot open the image file ({error.strerror})") from error
    problem = image_file_problem(head, tail, path.suffix)
    if problem is not None:
        raise VideoReadError(path, problem)


def _read_image(path: Path) -> np.ndarray:
    # cv2.imread returns None (no exception) for unreadable files and a grey-filled image for
    # truncated ones: check the end marker first.
    _check_image_file(path)
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


def check_crop(crop: Sequence[float] | None, key: str = "crop") -> tuple[float, ...] | None:
    """``crop`` as a tuple after checking its form; ``key`` names it in the error (e.g. ``data.init_args.crop``)."""
    if crop is None:
        return None
    crop = tuple(crop)
    form = "(top, bottom, left, right) as fractions of the frame (all <= 1) or in pixels"
    if len(crop) != 4 or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in crop):
        raise ValueError(f"{key}={crop!r} must be {form}, or null for whole frames")
    top, bottom, left, right = crop
    if min(crop) < 0 or bottom <= top or right <= left:
        raise ValueError(f"{key}={crop!r} must be {form} with 0 <= top < bottom and 0 <= left < right")
    if max(crop) > 1 and any(float(v) != int(v) for v in crop):
        raise ValueError(f"{key}={crop!r} mixes pixels (values > 1) and fractions; give all four as one or the other")
    return crop


def crop_box(crop: Sequence[float], height: int, width: int) -> tuple[int, int, int, int]:
    """The pixel box (top, bottom, left, right) of ``crop`` in a height x width frame.

    Fractions are scaled by the frame size and rounded; a pixel box must lie inside the
    frame (a ValueError says where it reaches out: such a box was made for other frames).
    """
    top, bottom, left, right = crop
    if max(crop) <= 1:
        box = (round(top * height), round(bottom * height), round(left * width), round(right * width))
        if box[1] <= box[0] or box[3] <= box[2]:
            raise ValueError(f"crop {tuple(crop)} leaves no pixel of a {width}x{height} frame (pixel box {box})")
        return box
    box = tuple(int(v) for v in crop)
    if box[1] > height or box[3] > width:
        raise ValueError(
            f"the pixel box {box} (rows {box[0]}-{box[1]}, columns {box[2]}-{box[3]}) reaches outside the "
            f"{width}x{height} frame; give the crop as fractions of the frame, which fit any frame size "
            "(e.g. [0.0, 1.0, 0.25, 0.75] keeps all rows and the middle half of the columns)"
        )
    return box


def crop_frames(frames: np.ndarray, crop: Sequence[float] | None, path: str | Path = "") -> np.ndarray:
    """Frames (L, H, W, 3) cut to ``crop`` = (top, bottom, left, right), fractions or pixels (see :func:`crop_box`).

    A box that does not fit the frames raises VideoReadError naming ``path``.
    """
    if crop is None:
        return frames
    height, width = frames.shape[1:3]
    try:
        top, bottom, left, right = crop_box(check_crop(crop), height, width)
    except ValueError as error:
        raise VideoReadError(path, str(error)) from error
    return np.ascontiguousarray(frames[:, top:bottom, left:right])


def read_video(
    path: str | Path, indices: Sequence[int] | None = None, crop: Sequence[float] | None = None
) -> np.ndarray:
    """Read a video as uint8 RGB (L, H, W, 3); with ``indices`` only those frames (in that order).

    ``crop`` = (top, bottom, left, right), fractions or pixels, cuts every frame to that box (see :func:`crop_box`).
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
    """Frames ``wanted`` read in order with OpenCV: every frame up to the last wanted one is grabbed
    (demuxed and decoded, never converted), only the wanted ones are retrieved and kept."""
    keep = set(wanted)
    kept: dict[int, np.ndarray] = {}
    capture = cv2.VideoCapture(str(path))
    index = 0
    try:
        while capture.isOpened() and index <= max(wanted) and capture.grab():
            if index in keep:
                ok, frame = capture.retrieve()
                if not ok:
                    break
                kept[index] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()
    if len(kept) < len(keep):
        reason = str(first_error).splitlines()[0] if str(first_error) else type(first_error).__name__
        raise VideoReadError(
            path, f"frame {index} does not decode (OpenCV stops there, decord: {reason}): the file is damaged; "
            f"re-encode it (e.g. ffmpeg -i '{path.name}' fixed.mp4) or cut it before frame {index}")
    return np.stack([kept[i] for i in wanted])


def to_gray(frames: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """uint8 RGB (L, H, W, 3) -> uint8 gray (L, h, w), optionally resized to size=(h, w)."""
    gray = [cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) for frame in frames]
    return np.stack([g if size is None else resize_image(g, size) for g in gray])


ShapeFor = Callable[[int, int], tuple[int, int]]
JPEG_REDUCTIONS = {8: cv2.IMREAD_REDUCED_GRAYSCALE_8, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
                   2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 1: cv2.IMREAD_GRAYSCALE}


def _image_size(path: Path) -> tuple[int, int]:
    """(height, width) from the image file's header, without decoding it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError) as error:
        raise VideoReadError(path, f"image file is corrupt or not a supported image ({error})") from error
    return height, width


def _full_box(crop: Sequence[float] | None, height: int, width: int, path: Path) -> tuple[int, int, int, int]:
    """The pixel box of ``crop`` in a height x width frame (the whole frame if None); errors name ``path``."""
    if crop is None:
        return 0, height, 0, width
    try:
        return crop_box(check_crop(crop), height, width)
    except ValueError as error:
        raise VideoReadError(path, str(error)) from error


def _reduced_box(box: tuple[int, int, int, int], height: int, width: int, reduction: int):
    """``box`` of the full frame in the 1/reduction decoded frame, or None if its edges are not on the
    reduced pixel grid (then the reduced crop would cover a shifted area)."""
    top, bottom, left, right = box
    if top % reduction or left % reduction:
        return None
    if (bottom % reduction and bottom != height) or (right % reduction and right != width):
        return None
    return top // reduction, math.ceil(bottom / reduction), left // reduction, math.ceil(right / reduction)


def estimation_plan(
    box: tuple[int, int, int, int], shape_for: ShapeFor, geometry: str
) -> tuple[tuple[int, int, int, int], tuple[int, int], int | None]:
    """How the ``box`` of a frame becomes the flow estimator's input under the frame ``geometry``.

    Returns (the box kept: its centred square for ``crop``; the (h, w) it is resized to,
    ``shape_for`` of the kept size; the square side it is then padded to for ``pad``, else None).
    ``squash`` keeps the frame's aspect here: the flows are squeezed to the square afterwards.
    """
    top, bottom, left, right = box
    kept_top, kept_bottom, kept_left, kept_right = kept_box(bottom - top, right - left, geometry)
    box = (top + kept_top, top + kept_bottom, left + kept_left, left + kept_right)
    height, width = kept_bottom - kept_top, kept_right - kept_left
    if geometry == "pad":
        side = shape_for(max(height, width), max(height, width))[0]
        return box, padded_shape(height, width, side), side
    return box, shape_for(height, width), None


def estimation_gray(region: np.ndarray, inner: tuple[int, int], side: int | None) -> np.ndarray:
    """A gray frame region resized to ``inner`` and, for the ``pad`` geometry, centred on a side x side square."""
    gray = resize_image(region, inner)
    return gray if side is None else pad_to_square(gray, side)


def jpeg_reduction(
    height: int, width: int, crop: Sequence[float] | None, shape_for: ShapeFor, path: Path = Path(),
    geometry: str = "squash",
) -> tuple[int, tuple[int, int]]:
    """(reduction, target) for JPEG frames of height x width cut to ``crop``, then to ``geometry``'s kept box.

    ``target`` is the size that box is resized to (:func:`estimation_plan`); ``reduction`` is the largest
    of libjpeg's 8, 4, 2 whose decoded box is still at least the target in both sides (so the target is
    at least 2x smaller) and on whose pixel grid the box's edges lie; else 1 (full decoding).
    """
    box, target, _ = estimation_plan(_full_box(crop, height, width, path), shape_for, geometry)
    for reduction in (8, 4, 2):
        small = _reduced_box(box, height, width, reduction)
        if small is not None and small[1] - small[0] >= target[0] and small[3] - small[2] >= target[1]:
            return reduction, target
    return 1, target


def _gray_folder(folder: Path, shape_for: ShapeFor, crop: Sequence[float] | None, geometry: str) -> np.ndarray:
    files = _folder_frames(folder)
    height, width = _image_size(files[0])
    all_jpeg = all(f.suffix.lower() in (".jpg", ".jpeg") for f in files)
    box, target, side = estimation_plan(_full_box(crop, height, width, folder), shape_for, geometry)
    # PNG has no reduced decoding
    reduction = jpeg_reduction(height, width, crop, shape_for, folder, geometry)[0] if all_jpeg else 1
    decoded = (math.ceil(height / reduction), math.ceil(width / reduction))  # libjpeg rounds up
    top, bottom, left, right = _reduced_box(box, height, width, reduction)
    out = np.empty((len(files), *((side, side) if side else target)), dtype=np.uint8)
    for i, file in enumerate(files):
        _check_image_file(file)
        if all_jpeg:
            gray = cv2.imread(str(file), JPEG_REDUCTIONS[reduction])
        else:
            color = cv2.imread(str(file), cv2.IMREAD_COLOR)
            gray = None if color is None else cv2.cvtColor(color, cv2.COLOR_BGR2GRAY)
        if gray is None:
            raise VideoReadError(file, "image file is corrupt or not a supported image")
        if gray.shape != decoded:
            raise VideoReadError(
                folder, f"frames have different sizes: '{files[0].name}' is {width}x{height}, '{file.name}' is not"
            )
        out[i] = estimation_gray(gray[top:bottom, left:right], target, side)
    return out


DECORD_CHUNK = 32  # frames per get_batch when decord reads a whole file for the estimator (bounded memory)


def _gray_video_file(path: Path, shape_for: ShapeFor, crop: Sequence[float] | None, geometry: str) -> np.ndarray:
    length = len(_open_decord(path))  # the frame count training checks against; names a corrupt file
    capture = cv2.VideoCapture(str(path))
    out: list[np.ndarray] = []

    def add(gray: np.ndarray) -> None:
        nonlocal plan
        if plan is None:
            plan = estimation_plan(_full_box(crop, *gray.shape, path), shape_for, geometry)
        (top, bottom, left, right), target, side = plan
        out.append(estimation_gray(gray[top:bottom, left:right], target, side))

    plan = None
    try:
        while len(out) <= length:
            ok, frame = capture.read()
            if not ok:
                break
            add(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    finally:
        capture.release()
    if len(out) != length:  # OpenCV and decord disagree on this file: decord's frames, as training reads them
        out, plan = [], None
        for start in range(0, length, DECORD_CHUNK):
            chunk = read_video(path, range(start, min(start + DECORD_CHUNK, length)))
            for frame in chunk:
                add(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
    return np.stack(out)


def read_gray_video(
    path: str | Path, shape_for: ShapeFor, crop: Sequence[float] | None = None, geometry: str = "squash"
) -> np.ndarray:
    """uint8 gray frames (L, h, w) of a video, cut to ``crop``, then to the frame ``geometry``'s kept box
    (:func:`estimation_plan`), at (h, w) = ``shape_for(kept height, width)`` (padded to a square for ``pad``).

    The default ``squash`` keeps the whole frame at its aspect. Decodes only what that size needs:
    JPEG frames at the largest libjpeg reduction (1/8, 1/4, 1/2) still at least the target size (see
    :func:`jpeg_reduction`), straight to gray (the JPEG's own luma), then area-resized; video files
    one frame at a time with OpenCV (decord in chunks where the two disagree). Errors as :func:`read_video`.
    """
    path = Path(path)
    _check_exists(path)
    if path.is_dir():
        return _gray_folder(path, shape_for, crop, geometry)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise VideoReadError(
            path, f"unsupported suffix '{path.suffix}' (expected a frame folder or {VIDEO_SUFFIXES})"
        )
    return _gray_video_file(path, shape_for, crop, geometry)
