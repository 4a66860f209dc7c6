"""Tiny fake MUG and UTD-MHAD trees in the datasets' real layouts, and random flow conditions, for the data tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from s2dm_lightning.data.mug import EXPRESSIONS
from s2dm_lightning.flow_format import identity_condition
from tests.data.conftest import moving_texture_video, write_avi


def write_mug_take(folder: Path, frames: np.ndarray) -> Path:
    """MUG's naming: img_0000.jpg, img_0001.jpg, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"img_{i:04d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


def make_mug_tree(
    root: Path,
    subjects: Sequence[str] = ("001", "002", "020"),
    expressions: Sequence[str] = EXPRESSIONS,
    session_subjects: Sequence[str] = ("002",),
    takes: int = 1,
    num_frames: int = 6,
    size: int = 32,
) -> Path:
    """``root/subjects3/<subject>/[session0/]<expression>/take<NNN>/img_<NNNN>.jpg``; returns subjects3."""
    base = root / "subjects3"
    seed = 0
    for subject in subjects:
        parent = base / subject / "session0" if subject in session_subjects else base / subject
        for expression in expressions:
            for take in range(takes):
                seed += 1
                video = moving_texture_video(num_frames=num_frames, size=size, seed=seed)
                write_mug_take(parent / expression / f"take{take:03d}", video)
    return base


def make_mhad_tree(
    root: Path,
    actions: Sequence[int] = (1, 2, 3, 10, 27),
    subjects: Sequence[int] = (1, 2, 3, 8),
    trials: Sequence[int] = (1, 2),
    num_frames: int = 8,
    width: int = 64,
    height: int = 48,
    missing: Sequence[str] = ("a27_s8_t2",),
) -> Path:
    """``root/RGB/a<action>_s<subject>_t<trial>_color.avi`` (MJPG, width x height); returns the RGB folder."""
    folder = root / "RGB"
    folder.mkdir(parents=True, exist_ok=True)
    seed = 0
    for action in actions:
        for subject in subjects:
            for trial in trials:
                seed += 1
                name = f"a{action}_s{subject}_t{trial}"
                if name in missing:
                    continue
                square = moving_texture_video(num_frames=num_frames, size=width, seed=seed)
                write_avi(folder / f"{name}_color.avi", np.ascontiguousarray(square[:, :height]))
    # Files of the other modalities and strays are ignored.
    (folder / "a1_s1_t1_depth.mat").write_bytes(b"not a video")
    (folder / "readme.txt").write_text("UTD-MHAD")
    return folder


def random_conditions(frames: int, size: int) -> torch.Tensor:
    """(frames, 3, size, size) grid + occlusion: frame 0 the identity, the others small random warps."""
    flow = identity_condition(size, size).repeat(frames, 1, 1, 1)
    flow[1:, :2] += 0.05 * torch.randn(frames - 1, 2, size, size)
    flow[1:, 2] = torch.rand(frames - 1, size, size)
    return flow
