"""Packed clips: a dataset's clips written once as litdata chunks (``litdata.optimize``), to stream from a folder
or an object store (``s3://``) with :class:`s2dm_lightning.data.streaming.StreamingVideoDataModule`.

Layout of a shard set (``pack --output_dir DIR``)::

    DIR/train/index.json, chunk-*.bin     the training clips (``clips_per_video`` per training video)
    DIR/val/index.json, chunk-*.bin       the validation clips (the datamodule's val set, evaluation sampling)

Each item is one clip: ``frames`` uint8 (F, R, R, 3), already square under the frame geometry; ``flow``
float32 (F, 3, h, w) in grid form (what the flow cache's ``load`` gives); ``frame_indices`` int64 (F,);
``caption``, ``video_id`` and ``clip_id`` strings. litdata's ``index.json`` gets one more key, ``s2dm``
(:func:`shard_metadata`): the format version, the flow settings, resolution, frame count, frame geometry,
source (crop, imported flows), the captions and the clip count. It is written last, so a shard set whose
packing was interrupted has none and is refused (:func:`read_shard_metadata`).

Deterministic: a training clip's frames are drawn with a generator seeded from (``seed``, video id, clip
number), validation clips take the first frame of each interval, and the clips are written in a fixed
order, so the same dataset and options give chunk files of the same bytes (tests/data/test_shards.py).
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from s2dm_lightning.data.datasets import VideoRecord
from s2dm_lightning.data.flow_cache import FlowCache
from s2dm_lightning.data.geometry import fit_frames
from s2dm_lightning.data.sampling import interval_frame_indices
from s2dm_lightning.data.video_io import count_frames, read_video
from s2dm_lightning.io import atomic_write_text

SHARD_FORMAT = 1
METADATA_KEY = "s2dm"
SPLITS = ("train", "val")
EXTRA = "stream"  # pip install 's2dm_lightning[stream]'


def require_litdata() -> Any:
    """The ``litdata`` module, or an ImportError naming the extra that installs it."""
    try:
        import litdata
    except ImportError as error:
        raise ImportError(
            f"streaming shards need litdata: pip install 's2dm_lightning[{EXTRA}]' (or pip install "
            f"'litdata>=0.2.76,<0.3'); missing: {error.name}"
        ) from error
    return litdata


def clip_seed(seed: int, video_id: str, clip: int) -> int:
    """The frame-drawing seed of training clip ``clip`` of ``video_id``: stable across runs and machines."""
    return zlib.crc32(f"{seed}/{video_id}/{clip}".encode())


class ClipPacker:
    """``litdata.optimize``'s ``fn``: (record index, clip number) -> the item of that clip (picklable)."""

    def __init__(self, records: list[VideoRecord], flow_cache: FlowCache, resolution: int, num_frames: int,
                 train: bool, seed: int) -> None:
        self.records, self.flow_cache = records, flow_cache
        self.resolution, self.num_frames, self.train, self.seed = resolution, num_frames, train, seed

    def __call__(self, item: tuple[int, int]) -> dict[str, Any]:
        record = self.records[item[0]]
        clip = item[1]
        num_available = count_frames(record.path)
        generator = torch.Generator().manual_seed(clip_seed(self.seed, record.video_id, clip)) if self.train else None
        indices = interval_frame_indices(num_available, self.num_frames, random=self.train, generator=generator)
        frames = fit_frames(read_video(record.path, indices, crop=record.crop), self.resolution,
                            self.flow_cache.settings.frame_geometry)
        flow = self.flow_cache.load(record.video_id, expected_frames=num_available, indices=indices)
        return {
            "frames": np.ascontiguousarray(frames, dtype=np.uint8),
            "flow": flow.contiguous(),
            "frame_indices": torch.tensor(indices, dtype=torch.long),
            "caption": record.caption,
            "video_id": record.video_id,
            "clip_id": f"{record.video_id}/{clip}",
        }


def shard_metadata(datamodule: Any, split: str, records: list[VideoRecord], clips_per_video: int,
                   seed: int) -> dict[str, Any]:
    """What the clips of ``split`` were made with: checked by the streaming datamodule before training."""
    return {
        "format": SHARD_FORMAT,
        "split": split,
        "flow_settings": datamodule.flow_settings.to_dict(),
        "resolution": datamodule.resolution,
        "num_frames": datamodule.num_frames,
        "frame_geometry": datamodule.frame_geometry,
        "source": datamodule.cache_source(),
        "datamodule": type(datamodule).__name__,
        "clips_per_video": clips_per_video,
        "seed": seed,
        "num_clips": len(records) * clips_per_video,
        "captions": sorted({record.caption for record in records}),
    }


def pack_split(datamodule: Any, split: str, output_dir: str | Path, clips_per_video: int = 1, seed: int = 0,
               chunk_bytes: str | int = "64MB", workers: int = 1) -> Path:
    """Write the clips of ``datamodule.datasets[split]`` (``setup("fit")`` done) to ``output_dir/split``."""
    litdata = require_litdata()
    dataset = datamodule.datasets["train" if split == "train" else "val"]
    records = list(dataset.records)
    if not records:
        raise ValueError(f"pack: the {split} split of {type(datamodule).__name__} (data.root="
                         f"{getattr(datamodule, 'root', None)!r}) has no videos with cached flows")
    target = Path(output_dir) / split
    if target.exists():
        shutil.rmtree(target)
    train = split == "train"
    per_video = clips_per_video if train else 1
    inputs = [(index, clip) for index in range(len(records)) for clip in range(per_video)]
    packer = ClipPacker(records, dataset.flow_cache, dataset.resolution, dataset.num_frames, train, seed)
    # litdata.optimize sets the process-wide start method to "spawn" (force=True): every DataLoader started
    # afterwards in this process would spawn its workers (seconds each, re-importing torch) instead of forking.
    start_method = multiprocessing.get_start_method(allow_none=True)
    try:
        litdata.optimize(fn=packer, inputs=inputs, output_dir=str(target.resolve()), chunk_bytes=chunk_bytes,
                         num_workers=workers, reorder_files=False, verbose=False)
    finally:
        multiprocessing.set_start_method(start_method, force=True)
    index_path = target / "index.json"
    index = json.loads(index_path.read_text())
    index[METADATA_KEY] = shard_metadata(datamodule, split, records, per_video, seed)
    atomic_write_text(index_path, json.dumps(index, sort_keys=True))
    return target


def read_shard_metadata(index_path: str | Path, where: str) -> dict[str, Any]:
    """The ``s2dm`` section of a shard set's ``index.json`` (``where``: its folder or URI, for the error)."""
    try:
        index = json.loads(Path(index_path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"shard set '{where}': cannot read its index.json ({error})") from error
    metadata = index.get(METADATA_KEY) if isinstance(index, dict) else None
    if not isinstance(metadata, dict):
        raise ValueError(f"shard set '{where}': its index.json has no '{METADATA_KEY}' section: not written by "
                         "`python -m s2dm_lightning pack`, or packing was interrupted; run pack again")
    if metadata.get("format") != SHARD_FORMAT:
        raise ValueError(f"shard set '{where}' has format {metadata.get('format')!r}, this version reads format "
                         f"{SHARD_FORMAT}: pack the dataset again")
    return metadata
