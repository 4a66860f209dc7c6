"""``sample --motion_from``'s reading as it was before issue #29 (commit 7811025), kept ONLY as the baseline of
``bench_motion_from.py``: decode EVERY frame at full size (``read_video`` without indices), cut each to its
centred square, estimate flows from frame 0 to every frame, then keep the ``num_frames`` clip frames.
Not used by the package.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from s2dm_lightning.data.flow import FlowSettings, estimate_flow_sequence
from s2dm_lightning.data.sampling import interval_frame_indices
from s2dm_lightning.data.video_io import read_video


def flows_from_video_before(path: str | Path, flow_size: int, num_frames: int = 16) -> tuple[torch.Tensor, np.ndarray]:
    frames = read_video(path)
    height, width = frames.shape[1:3]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    frames = np.ascontiguousarray(frames[:, top:top + side, left:left + side])
    flows = estimate_flow_sequence(frames, FlowSettings(flow_size=flow_size))
    indices = interval_frame_indices(len(frames), num_frames, random=False)
    return flows[indices], frames[indices]
