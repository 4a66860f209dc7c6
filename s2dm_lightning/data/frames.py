"""Single frames drawn at random from different videos: the data of the VAE fine-tuning stage.

The paper fine-tunes SD's encoder and decoder "with uncorrelated images randomly selected
from different videos" (Sec. 4.1). :class:`FrameDataModule` wraps any
:class:`~s2dm_lightning.data.VideoDataModule` (MUG, MHAD, a video folder, synthetic) and
uses its records -- paths, crop, split -- but needs no flows, so it runs before
``preprocess``. Items are dicts ``{"frames": float32 (3, R, R) in [-1, 1], "video_id",
"frame_index"}``; batches stack them to (B, 3, R, R).
"""

from __future__ import annotations

import os
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from s2dm_lightning.data.datamodule import VideoDataModule
from s2dm_lightning.data.datasets import VideoRecord, frames_to_tensor
from s2dm_lightning.data.geometry import DEFAULT_FRAME_GEOMETRY
from s2dm_lightning.data.video_io import count_frames, read_video
from s2dm_lightning.validation import check_number


class RandomFrameDataset(Dataset):
    """``length`` items; item i is a frame of video ``i % len(records)``.

    Training (``random=True``): the frame is drawn uniformly from the video with a
    per-worker generator (seeded like the clip dataset's: different per worker and per
    epoch, reproducible under ``seed_everything``); with a shuffling loader a batch holds
    frames of different videos. Evaluation: the middle frame, deterministic.
    """

    def __init__(self, records: list[VideoRecord], resolution: int, length: int | None = None,
                 random: bool = True, geometry: str = DEFAULT_FRAME_GEOMETRY) -> None:
        if not records:
            raise ValueError("RandomFrameDataset needs at least one video")
        self.records = list(records)
        self.resolution = resolution
        self.geometry = geometry  # the video data module's (data.geometry), as its clips
        self.length = length if length is not None else len(self.records)
        self.random = random
        self._num_frames: dict[str, int] = {}
        self._generator: torch.Generator | None = None
        self._generator_key: tuple[int, int] | None = None

    def __len__(self) -> int:
        return self.length

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_generator"] = state["_generator_key"] = None
        return state

    def _rng(self) -> torch.Generator:
        info = get_worker_info()
        seed = info.seed if info is not None else torch.initial_seed()
        key = (os.getpid(), seed)
        if self._generator is None or self._generator_key != key:
            self._generator = torch.Generator().manual_seed(seed % (2**63))
            self._generator_key = key
        return self._generator

    def num_frames(self, record: VideoRecord) -> int:
        if record.video_id not in self._num_frames:
            self._num_frames[record.video_id] = count_frames(record.path)
        return self._num_frames[record.video_id]

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index % len(self.records)]
        length = self.num_frames(record)
        if self.random:
            frame = int(torch.randint(length, (1,), generator=self._rng()))
        else:
            frame = length // 2
        image = read_video(record.path, [frame], crop=record.crop)
        return {"frames": frames_to_tensor(image, self.resolution, self.geometry)[0], "video_id": record.video_id,
                "frame_index": frame}


class FrameDataModule(L.LightningDataModule):
    """Random single frames of the training videos of ``videos`` (for ``VAEFineTune``).

    Args:
        videos: the dataset's video data module (its ``root``, ``resolution``, crop and frame geometry are used;
            its flows are not needed).
        frames_per_epoch: training items per epoch (each a random frame; videos in turn).
        batch_size: frames per batch.
        num_workers: DataLoader worker processes.
        val_frames: validation: the middle frame of the first N validation (else test) videos.
    """

    def __init__(
        self,
        videos: VideoDataModule,
        frames_per_epoch: int = 10000,
        batch_size: int = 16,
        num_workers: int = 0,
        val_frames: int = 32,
    ) -> None:
        super().__init__()
        for name, value in (("frames_per_epoch", frames_per_epoch), ("batch_size", batch_size), ("val_frames", val_frames)):
            check_number(f"data.init_args.{name}", value, at_least=1)
        check_number("data.init_args.num_workers", num_workers, at_least=0)
        self.videos = videos
        self.frames_per_epoch = frames_per_epoch
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_frames = val_frames
        self.datasets: dict[str, RandomFrameDataset] = {}

    def prepare_data(self) -> None:
        generate = getattr(self.videos, "generate", None)  # the synthetic dataset writes itself
        if generate is not None:
            generate()

    def setup(self, stage: str | None = None) -> None:
        self.videos.check_root()
        records = self.videos.records()
        self.videos.check_crop_fits(records)
        by_split = {s: [r for r in records if r.split == s] for s in ("train", "val", "test")}
        if not by_split["train"]:
            raise ValueError(f"no training videos under data.videos.root={self.videos.root!r}")
        resolution, geometry = self.videos.resolution, self.videos.frame_geometry
        val = (by_split["val"] or by_split["test"] or by_split["train"])[: self.val_frames]
        self.datasets = {
            "train": RandomFrameDataset(by_split["train"], resolution, self.frames_per_epoch, random=True,
                                        geometry=geometry),
            "val": RandomFrameDataset(val, resolution, random=False, geometry=geometry),
        }

    def _loader(self, name: str, train: bool) -> DataLoader:
        if name not in self.datasets:
            raise RuntimeError(f"FrameDataModule.setup() must run before the {name} dataloader is built")
        dataset = self.datasets[name]
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=train,
                          drop_last=train and len(dataset) >= self.batch_size,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)
