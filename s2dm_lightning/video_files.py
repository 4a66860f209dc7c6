"""Write videos (mp4, gif) and pictures (png) to disk, atomically.

Every writer goes through :func:`s2dm_lightning.io.atomic_path` (a temporary file in the
target folder with the target's extension, so that the encoder picks the right format,
then renamed onto the target): a reader never sees a half-written file, an existing file
survives a failed write, and no temporary file is left behind on error.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from s2dm_lightning.io import atomic_path, atomic_write_bytes


def _check_video(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise ValueError(
            f"frames must be uint8 of shape (F, H, W, 3) with F >= 1, got {frames.dtype} {frames.shape}"
        )
    return np.ascontiguousarray(frames)


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be uint8 of shape (H, W, 3), got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


def pad_to_even(frames: np.ndarray) -> np.ndarray:
    """Pad (F, H, W, 3) by repeating the last row/column so that H and W are even (yuv420p needs it)."""
    pad_h = frames.shape[1] % 2
    pad_w = frames.shape[2] % 2
    if not (pad_h or pad_w):
        return frames
    return np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: int = 8) -> Path:
    """Write uint8 (F, H, W, 3) as an H.264 mp4 (libx264, yuv420p) that browsers and players open.

    Odd heights/widths are padded by one pixel (edge repeat), since yuv420p needs even sizes;
    imageio's own resizing to multiples of 16 is switched off (``macro_block_size=1``) so
    the pixels are not resampled.

    Args:
        path: target file, normally ending in ``.mp4``.
        frames: uint8 video (F, H, W, 3).
        fps: frames per second.
    """
    import imageio.v2 as imageio  # the ffmpeg plugin is only needed here

    frames = pad_to_even(_check_video(frames))
    with atomic_path(path) as tmp:
        writer = imageio.get_writer(
            tmp,
            format="FFMPEG",
            mode="I",
            fps=fps,
            codec="libx264",
            pixelformat="yuv420p",
            macro_block_size=1,
            quality=8,
            ffmpeg_log_level="error",
        )
        try:
            for frame in frames:
                writer.append_data(frame)
        finally:
            writer.close()
    return Path(path)


def gif_bytes(frames: np.ndarray, fps: int = 8) -> bytes:
    """Encode uint8 (F, H, W, 3) as an animated GIF that loops forever; returns the file's bytes.

    Each frame gets its own 256-colour palette (GIF's limit), so colours may shift slightly.
    Note: the GIF encoder (Pillow) merges consecutive identical frames into one longer
    frame; the playback timing is unchanged but a reader then counts fewer frames.
    """
    frames = _check_video(frames)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=max(int(round(1000.0 / fps)), 20),  # browsers treat < 20 ms as 100 ms
        loop=0,  # 0 = loop forever
        disposal=1,
        optimize=False,
    )
    return buffer.getvalue()


def write_gif(path: str | os.PathLike, frames: np.ndarray, fps: int = 8) -> Path:
    """Write uint8 (F, H, W, 3) as an animated GIF that loops forever (see :func:`gif_bytes`).

    Args:
        path: target file, normally ending in ``.gif``.
        frames: uint8 video (F, H, W, 3).
        fps: frames per second.
    """
    return atomic_write_bytes(path, gif_bytes(frames, fps))


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write a uint8 (H, W, 3) RGB image as PNG.

    Args:
        path: target file, normally ending in ``.png``.
        image: uint8 RGB image (H, W, 3).
    """
    image = _check_image(image)
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return Path(path)
