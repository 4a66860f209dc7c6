"""The clips a protocol scores: the real clips (which videos, which frames) and the mp4 round trip.

The real clips of a protocol other than the ``s2dm`` real set (every test clip once, spread frames; that one
is the test dataset itself) are planned up front: clip j comes from video ``j mod n`` of the chosen split's
videos (in metadata order; with ``consecutive`` frames only the videos long enough for one clip), and its
random choices (start offset, frame within each interval) come from a generator seeded with
``real_seed * 1000003 + j``. The plan is therefore the same on every DDP rank, whatever the shard.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from s2dm_lightning.data.datasets import VideoRecord, frames_to_tensor
from s2dm_lightning.data.geometry import DEFAULT_FRAME_GEOMETRY
from s2dm_lightning.data.sampling import (
    consecutive_frame_indices,
    consecutive_span,
    interval_frame_indices,
    linspace_frame_indices,
)
from s2dm_lightning.data.video_io import count_frames, read_video
from s2dm_lightning.evaluation.protocol import PROTOCOL_KEY, EvaluationProtocol
from s2dm_lightning.video_files import write_mp4

log = logging.getLogger(__name__)

#: The ``frame_sampling`` a plan's frame selection is recorded as (the cache key and report).
FRAME_SAMPLING_NAMES = {"spread": "interval_first_frame", "spread_random": "interval_random_frame",
                        "consecutive": "consecutive_random_start", "linspace": "linspace_last_repeated"}


def real_clip_plan(lengths: list[int], protocol: EvaluationProtocol, num_frames: int) -> list[tuple[int, list[int]]]:
    """(video position, frame indices) of every real clip, for videos of ``lengths`` frames.

    Raises:
        ValueError: no video is long enough for one clip.
    """
    span = consecutive_span(num_frames, protocol.frame_stride) if protocol.frames == "consecutive" else 2
    eligible = [i for i, length in enumerate(lengths) if length >= span]
    if not eligible:
        raise ValueError(f"none of the {len(lengths)} {protocol.real_split} videos has the {span} frames a "
                         f"{protocol.frames} clip of {num_frames} frames (metrics.frame_stride="
                         f"{protocol.frame_stride}) needs; lower metrics.frame_stride or data.num_frames")
    plan = []
    for j in range(protocol.num_real_clips or len(eligible)):
        video = eligible[j % len(eligible)]
        length = lengths[video]
        generator = torch.Generator().manual_seed(protocol.real_seed * 1000003 + j)
        if protocol.frames == "consecutive":
            start = int(torch.randint(length - span + 1, (1,), generator=generator))
            indices = consecutive_frame_indices(length, num_frames, protocol.frame_stride, start)
        elif protocol.frames == "linspace":
            indices = linspace_frame_indices(length, num_frames)
        else:
            indices = interval_frame_indices(length, num_frames, random=protocol.frames == "spread_random",
                                             generator=generator)
        plan.append((video, indices))
    return plan


class RealClipDataset(Dataset):
    """The real clips of a plan: items ``{"frames": (F, 3, R, R) in [-1, 1], "video_id", "frame_indices"}``.

    Args:
        records: the videos of the real split.
        plan: (position in ``records``, frame indices) per clip, see :func:`real_clip_plan`.
        resolution: frames are resized to resolution x resolution (as the training clips).
        frame_sampling: how the plan chose frames (recorded in the cache key).
        geometry: how frames become square (``data.geometry``; as the training clips; in the cache key).
    """

    train = False  # an evaluation dataset (see real_stats.dataset_identity)

    def __init__(self, records: list[VideoRecord], plan: list[tuple[int, list[int]]], resolution: int,
                 frame_sampling: str, geometry: str = DEFAULT_FRAME_GEOMETRY) -> None:
        self.records, self.plan, self.resolution = list(records), list(plan), int(resolution)
        self.geometry = geometry
        self.num_frames = len(plan[0][1]) if plan else 0
        self.frame_sampling = frame_sampling

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, index: int) -> dict[str, Any]:
        video, indices = self.plan[index]
        record = self.records[video]
        frames = read_video(record.path, indices, crop=record.crop)
        return {"frames": frames_to_tensor(frames, self.resolution, self.geometry), "video_id": record.video_id,
                "frame_indices": torch.tensor(indices, dtype=torch.long)}

    def plan_sha256(self) -> str:
        """Hex SHA-256 of the plan with the video ids (part of the real statistics' identity)."""
        text = json.dumps([[self.records[video].video_id, indices] for video, indices in self.plan])
        return hashlib.sha256(text.encode()).hexdigest()


def real_dataset(protocol: EvaluationProtocol, datamodule: Any, test_dataset: Dataset) -> Dataset:
    """The real clips of ``protocol``: the test dataset itself for the s2dm real set, else a
    :class:`RealClipDataset` over the videos of ``datamodule.records()`` in the chosen split.

    Raises:
        ValueError: the data module cannot list its videos, or the split has none.
    """
    if protocol.is_s2dm_real_set:
        return test_dataset
    if not callable(getattr(datamodule, "records", None)) or not hasattr(datamodule, "resolution"):
        raise ValueError(
            f"{PROTOCOL_KEY}={protocol.name!r} (real_split={protocol.real_split!r}, frames={protocol.frames!r}) "
            f"needs a data module that lists its videos (records() and resolution, as "
            f"s2dm_lightning.data.VideoDataModule); {type(datamodule).__name__} does not"
        )
    records = [r for r in datamodule.records() if protocol.real_split in ("all", r.split)]
    if not records:
        raise ValueError(f"metrics.real_split={protocol.real_split!r}: the dataset under data.root has no such videos")
    num_frames = int(getattr(datamodule, "num_frames", 16))
    plan = real_clip_plan([count_frames(r.path) for r in records], protocol, num_frames)
    left_out = len(records) - len({video for video, _ in plan})
    if left_out and protocol.frames == "consecutive":
        log.warning("%d of %d %s videos are shorter than one clip of %d frames at stride %d and are left out",
                    left_out, len(records), protocol.real_split, num_frames, protocol.frame_stride)
    return RealClipDataset(records, plan, datamodule.resolution, FRAME_SAMPLING_NAMES[protocol.frames],
                           getattr(datamodule, "frame_geometry", DEFAULT_FRAME_GEOMETRY))


def mp4_round_trip(videos: torch.Tensor, fps: int = 8) -> torch.Tensor:
    """(B, F, 3, H, W) [-1, 1] videos written as H.264 mp4 (:func:`s2dm_lightning.video_files.write_mp4`, the
    writer of ``predict``) and read back, on the videos' device: what scoring saved files would see."""
    out = []
    with tempfile.TemporaryDirectory(prefix="s2dm_mp4_") as folder:
        path = Path(folder) / "video.mp4"
        for video in videos:
            levels = ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
            write_mp4(path, levels.permute(0, 2, 3, 1).cpu().numpy(), fps=fps)
            back = read_video(path)[:, : video.shape[-2], : video.shape[-1]]  # drop the even-size padding
            if len(back) != len(video):
                raise RuntimeError(f"the mp4 round trip returned {len(back)} frames for {len(video)}")
            out.append(torch.from_numpy(back).permute(0, 3, 1, 2).float() / 127.5 - 1.0)
    return torch.stack(out).to(videos.device)
