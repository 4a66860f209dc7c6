"""Small on-disk videos for the data tests, all built in tmp_path."""

from __future__ import annotations

from pathlib import Path

import cv2
import imageio
import numpy as np
import pytest

from tests.data.shard_fixtures import shard_set  # noqa: F401 (a fixture for the streaming tests)


def textured(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth random texture, uint8 (height, width): enough structure for optical flow."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, size=(height, width)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 1.5)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min()) * 255
    return smooth.astype(np.uint8)


def moving_texture_video(num_frames: int = 12, size: int = 48, step: int = 1, seed: int = 0) -> np.ndarray:
    """uint8 RGB (num_frames, size, size, 3): a window sliding over a larger texture (camera pan)."""
    big = textured(size + step * num_frames, size + step * num_frames, seed)
    frames = [big[:size, step * i : step * i + size] for i in range(num_frames)]
    return np.stack([np.repeat(f[..., None], 3, axis=-1) for f in frames])


def write_frames(folder: Path, frames: np.ndarray, suffix: str = ".png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"img_{i}{suffix}"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


def write_avi(path: Path, frames: np.ndarray, fps: int = 10) -> Path:
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_mp4(path: Path, frames: np.ndarray, fps: int = 10) -> Path:
    imageio.mimwrite(str(path), list(frames), fps=fps, macro_block_size=1, quality=9)
    return path


@pytest.fixture
def pan_video() -> np.ndarray:
    return moving_texture_video()


def disc_video(num_frames: int = 6, height: int = 96, width: int = 128, radius: int = 30, step: int = 2) -> np.ndarray:
    """uint8 RGB frames (L, H, W, 3): a textured bright disc (levels 150-255) on a flat dark background (40)
    moving ``step`` px right and down per frame; a circle in any frame of any aspect."""
    texture = textured(height + num_frames * step, width + num_frames * step, 1).astype(np.float32)
    texture = (150 + texture * 105 / 255).astype(np.uint8)
    rows, cols = np.mgrid[0:height, 0:width]
    frames = np.full((num_frames, height, width, 3), 40, np.uint8)
    for i in range(num_frames):
        inside = (rows - (height // 2 - 3 + step * i)) ** 2 + (cols - (width // 2 - 3 + step * i)) ** 2 <= radius**2
        offset = (num_frames - i) * step  # the texture moves with the disc
        frames[i][inside] = texture[offset:offset + height, offset:offset + width, None][inside]
    return frames


def extents(mask: np.ndarray) -> tuple[int, int]:
    """(rows, columns) spanned by the True pixels of a 2-D mask."""
    rows, cols = np.where(mask.any(1))[0], np.where(mask.any(0))[0]
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
