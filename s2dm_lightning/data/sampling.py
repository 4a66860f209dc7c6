"""Which frames of a video make a clip (paper Sec. 4.1).

The video's frames are divided evenly into ``num_frames`` intervals and one frame is
drawn from each. Our choices the paper leaves open:

- the first index is always frame 0, also in training: frame 0 is the reference frame
  whose flow is the identity, since flows are precomputed from video frame 0;
- evaluation is deterministic: the first frame of each interval;
- a video shorter than ``num_frames`` is "sampled with repeats":
  index i is ``floor(i * L / num_frames)`` (the dataset warns once per such video).
"""

from __future__ import annotations

import numpy as np
import torch


def interval_frame_indices(
    num_available: int,
    num_frames: int = 16,
    *,
    random: bool,
    generator: torch.Generator | None = None,
) -> list[int]:
    """One frame index per interval of [0, num_available); the first is always 0."""
    if num_available < 2:
        raise ValueError(f"a video needs at least 2 frames to make a clip, got num_available={num_available}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    indices = []
    for i in range(num_frames):
        start = i * num_available // num_frames
        end = (i + 1) * num_available // num_frames  # exclusive; equals start for short videos
        if random and i > 0 and end - start > 1:
            offset = int(torch.randint(end - start, (1,), generator=generator))
            indices.append(start + offset)
        else:
            indices.append(start)
    return indices


def consecutive_frame_indices(num_available: int, num_frames: int, stride: int = 1, start: int = 0) -> list[int]:
    """``num_frames`` frames ``stride`` apart from ``start``: ``start, start + stride, ...`` (StyleGAN-V's
    ``load_n_consecutive`` with ``subsample_factor``). The clip must fit: see :func:`consecutive_span`."""
    if stride < 1 or num_frames < 1:
        raise ValueError(f"frame_stride and num_frames must be >= 1, got {stride} and {num_frames}")
    last = start + (num_frames - 1) * stride
    if start < 0 or last >= num_available:
        raise ValueError(f"frames {start}..{last} (stride {stride}) do not fit a video of {num_available} frames")
    return list(range(start, last + 1, stride))


def linspace_frame_indices(num_available: int, num_frames: int) -> list[int]:
    """LFDM's test frames: ``np.linspace(0, L - 1, num_frames)`` truncated to integers when the video has
    ``L >= num_frames`` frames, else every frame with the last repeated (nihaomiao/CVPR23_LFDM at 3601635,
    ``DM/datasets_mug.py`` lines 167-172; the same in ``DM/datasets_mhad.py``)."""
    if num_available < 1 or num_frames < 1:
        raise ValueError(f"need >= 1 frame and num_frames >= 1, got {num_available} and {num_frames}")
    if num_available < num_frames:
        return list(range(num_available)) + [num_available - 1] * (num_frames - num_available)
    # numpy's own float linspace: exact integer arithmetic would differ where float error lands just under an
    # integer (e.g. L = 46, F = 40: frame 14 where the exact value is 15), and LFDM's indices are numpy's
    return np.linspace(0, num_available - 1, num_frames, dtype=int).tolist()


def consecutive_span(num_frames: int, stride: int = 1) -> int:
    """Frames a clip of ``num_frames`` frames ``stride`` apart covers (a shorter video cannot give one)."""
    return (num_frames - 1) * stride + 1
