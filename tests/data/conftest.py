"""Small on-disk videos for the data tests, all built in tmp_path."""

from __future__ import annotations

from pathlib import Path

import cv2
import imageio
import numpy as np
import pytest


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
