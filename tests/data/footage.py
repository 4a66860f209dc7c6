"""Long 4:3 footage for the own-videos tests, generated in tmp_path (the real public clips are not in the repo)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from s2dm_lightning.video_files import write_mp4
from tests.data.conftest import textured


def panning_four_by_three(num_frames: int, width: int = 64, height: int = 48, step: int = 1) -> np.ndarray:
    """uint8 RGB (num_frames, height, width, 3): a 4:3 window panning right over a smooth texture (flow to find)."""
    big = textured(height, width + step * num_frames, seed=3)
    frames = [big[:, step * i: step * i + width] for i in range(num_frames)]
    return np.stack([np.stack([f, np.roll(f, 7, axis=0), 255 - f], axis=-1) for f in frames])


def flat_ramp(num_frames: int, width: int = 64, height: int = 48) -> np.ndarray:
    """uint8 (num_frames, height, width, 3), frame i all 5 + 5 i: each decoded frame tells its source index."""
    values = 5 + 5 * np.arange(num_frames, dtype=np.uint8)
    return np.broadcast_to(values[:, None, None, None], (num_frames, height, width, 3)).copy()


def write_footage(path: Path, frames: np.ndarray, fps: int = 10) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_mp4(path, frames, fps=fps)
