"""Video records, their metadata files, and the clip dataset.

A clip (paper Sec. 4.1) is ``num_frames`` frames, one from each of ``num_frames`` equal
intervals of the video (see :mod:`.sampling`), made ``resolution`` x ``resolution`` under the
frame geometry policy (:mod:`.geometry`: centred square by default) and scaled to [-1, 1],
with the video's cached flow/occlusion conditions y^i at the same frame indices (the first is frame 0: identity, occlusion 1).
"""

from __future__ import annotations

import csv
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from s2dm_lightning.data.flow_cache import FlowCache
from s2dm_lightning.data.geometry import DEFAULT_FRAME_GEOMETRY, fit_frames
from s2dm_lightning.data.sampling import interval_frame_indices
from s2dm_lightning.data.video_io import count_frames, read_video

SPLITS = ("train", "val", "test")
REQUIRED_COLUMNS = ("path", "caption", "split")


@dataclass
class VideoRecord:
    """One video of a dataset: a frame folder or video file, its caption and its split.

    ``crop`` = (top, bottom, left, right), fractions of the frame or pixels (see
    ``video_io.crop_box``): every frame is cut to this box before resizing and before flow
    estimation (None = the whole frame).
    """

    video_id: str
    path: Path
    caption: str
    split: str
    crop: tuple[float, float, float, float] | None = None


def read_metadata(metadata_path: str | Path, root: str | Path | None = None) -> list[VideoRecord]:
    """Records from a ``metadata.csv`` or ``metadata.json`` (a list of objects).

    Keys: ``path`` (relative to ``root``, default the metadata file's folder), ``caption``,
    ``split`` (train/val/test), and optionally ``video_id`` (default: ``path`` without suffix).
    """
    metadata_path = Path(metadata_path)
    root = metadata_path.parent if root is None else Path(root)
    if not metadata_path.exists():
        raise FileNotFoundError(f"metadata file '{metadata_path}' does not exist")
    rows = _read_rows(metadata_path)
    if not rows:
        raise ValueError(f"metadata file '{metadata_path}' lists no videos")
    records: list[VideoRecord] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        missing = [key for key in REQUIRED_COLUMNS if not str(row.get(key) or "").strip()]
        if missing:
            raise ValueError(
                f"metadata file '{metadata_path}', entry {number}: missing or empty column(s) {missing}"
            )
        split = str(row["split"]).strip()
        if split not in SPLITS:
            raise ValueError(
                f"metadata file '{metadata_path}', entry {number}: split {split!r} is not one of {SPLITS}"
            )
        relative = str(row["path"]).strip()
        video_id = str(row.get("video_id") or "").strip() or str(Path(relative).with_suffix(""))
        if video_id in seen:
            raise ValueError(
                f"metadata file '{metadata_path}': video_id {video_id!r} appears in entries {seen[video_id]} and {number}"
            )
        seen[video_id] = number
        records.append(VideoRecord(video_id, root / relative, str(row["caption"]).strip(), split))
    return records


def _read_rows(metadata_path: Path) -> list[dict[str, Any]]:
    if metadata_path.suffix.lower() == ".json":
        try:
            rows = json.loads(metadata_path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"metadata file '{metadata_path}' is not valid JSON: {error}") from error
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise ValueError(f"metadata file '{metadata_path}' must hold a JSON list of objects")
        return rows
    with open(metadata_path, newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [key for key in REQUIRED_COLUMNS if key not in columns]
        if missing:
            raise ValueError(
                f"metadata file '{metadata_path}' lacks column(s) {missing} (has {columns}); "
                f"required: {list(REQUIRED_COLUMNS)}, optional: video_id"
            )
        return list(reader)


def frames_to_tensor(frames: np.ndarray, resolution: int, geometry: str = DEFAULT_FRAME_GEOMETRY) -> torch.Tensor:
    """uint8 (F, H, W, 3) -> float32 (F, 3, R, R) in [-1, 1], made square under ``geometry`` (:mod:`.geometry`)."""
    array = fit_frames(frames, resolution, geometry).transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(np.ascontiguousarray(array))


class LatentClips(Protocol):
    """Where a clip's latents come from (``latent_cache.LatentCache``)."""

    def clip(self, video_id: str, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and std (F, C, h, w) of frames ``indices`` of ``video_id``."""
        ...


class VideoClipDataset(Dataset):
    """Clips of ``num_frames`` frames with their flow conditions; one item per video.

    Items are dicts: ``frames`` float32 (F, 3, R, R) in [-1, 1]; ``flow`` float32
    (F, 3, h, w); ``caption`` str; ``video_id`` str; ``frame_indices`` int64 (F,).
    Training draws frames at random (a per-worker generator); evaluation is deterministic.
    With a ``latent_cache`` (set by ``VideoDataModule.use_latent_cache``) an item carries the
    VAE posterior's ``latent_mean`` and ``latent_std`` (F, C, h, w) of its frames instead of
    ``frames``: the frames are not read at all. Frames become square under the flow cache's
    frame geometry (:mod:`.geometry`), so that frames and flows show the same area.
    """

    def __init__(
        self,
        records: list[VideoRecord],
        resolution: int,
        flow_cache: FlowCache,
        num_frames: int = 16,
        train: bool = False,
    ) -> None:
        if resolution < 1 or num_frames < 1:
            raise ValueError(f"resolution and num_frames must be positive, got {resolution} and {num_frames}")
        self.records = list(records)
        self.resolution = resolution
        self.num_frames = num_frames
        self.flow_cache = flow_cache
        self.geometry = flow_cache.settings.frame_geometry  # frames and flows of one clip under one policy
        self.train = train
        self.latent_cache: LatentClips | None = None
        self._generator: torch.Generator | None = None
        self._generator_key: tuple[int, int | None] | None = None
        self._warned_short: set[str] = set()

    def __len__(self) -> int:
        return len(self.records)

    def __getstate__(self) -> dict[str, Any]:
        # Worker processes build their own generator (see _rng).
        state = self.__dict__.copy()
        state["_generator"] = None
        state["_generator_key"] = None
        return state

    def _rng(self) -> torch.Generator:
        """A generator per DataLoader worker, seeded from the worker's seed.

        ``get_worker_info().seed`` is base_seed + worker_id, where base_seed is drawn
        anew each epoch from the main process's RNG: workers differ from each other and
        from epoch to epoch, and ``seed_everything`` makes the whole run reproducible.
        In the main process the seed is ``torch.initial_seed()``.
        """
        info = get_worker_info()
        seed = info.seed if info is not None else torch.initial_seed()
        key = (os.getpid(), seed)
        if self._generator is None or self._generator_key != key:
            self._generator = torch.Generator().manual_seed(seed % (2**63))
            self._generator_key = key
        return self._generator

    def state_dict(self) -> dict[str, Any]:
        """The training frame generator's state: torchdata's ``StatefulDataLoader`` keeps it per worker in the
        checkpoint and hands it back to the worker of a resumed run, which then draws the frames the
        interrupted run would have drawn."""
        return {"frame_generator": self._generator.get_state() if self._generator is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("frame_generator") is not None:
            self._rng().set_state(state["frame_generator"])

    def frame_indices(self, record: VideoRecord, num_available: int) -> list[int]:
        if num_available < self.num_frames and record.video_id not in self._warned_short:
            self._warned_short.add(record.video_id)
            warnings.warn(
                f"video '{record.video_id}' ({record.path}) has {num_available} frames, fewer than "
                f"num_frames={self.num_frames}: its clips are sampled with repeats",
                stacklevel=3,
            )
        generator = self._rng() if self.train else None
        return interval_frame_indices(num_available, self.num_frames, random=self.train, generator=generator)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        num_available = count_frames(record.path)
        indices = self.frame_indices(record, num_available)
        item: dict[str, Any] = {}
        if self.latent_cache is not None:
            item["latent_mean"], item["latent_std"] = self.latent_cache.clip(record.video_id, indices)
        else:
            frames = read_video(record.path, indices, crop=record.crop)
            item["frames"] = frames_to_tensor(frames, self.resolution, self.geometry)
        flow = self.flow_cache.load(record.video_id, expected_frames=num_available, indices=indices)
        return {
            **item,
            "flow": flow,
            "caption": record.caption,
            "video_id": record.video_id,
            "frame_indices": torch.tensor(indices, dtype=torch.long),
            "sample_index": index,  # seeds evaluation sampling per video (S2DM.evaluation_generators)
        }


class CyclicDataset(Dataset):
    """``length`` items that cycle through ``dataset`` (the evaluation protocol's N conditions).

    Item ``i`` is ``dataset[i % len(dataset)]`` plus ``sample_index`` = i and ``repeat`` =
    i // len(dataset): 0 marks the first occurrence of a real clip, so that it is counted once.
    """

    def __init__(self, dataset: Dataset, length: int) -> None:
        if length < 1 or len(dataset) < 1:  # type: ignore[arg-type]
            raise ValueError(f"need length >= 1 and a non-empty dataset, got {length} and {len(dataset)}")  # type: ignore[arg-type]
        self.dataset = dataset
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a CyclicDataset of length {self.length}")
        n = len(self.dataset)  # type: ignore[arg-type]
        item = dict(self.dataset[index % n])
        item["sample_index"] = index
        item["repeat"] = index // n
        return item
