"""LightningDataModules: a folder of videos with captions and a split (the synthetic one is in ``synthetic``).

Batches are default-collated dicts: ``frames`` (B, F, 3, R, R) in [-1, 1], ``flow``
(B, F, 3, h, w), ``caption`` list[str], ``video_id`` list[str], ``frame_indices`` (B, F).
Validation uses the first ``val_videos`` videos of the ``val`` split if the dataset has
one, else of the ``test`` split; test and predict use the whole test split. All
evaluation sampling is deterministic.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader
from torchdata.stateful_dataloader import StatefulDataLoader

from s2dm_lightning.data.datasets import CyclicDataset, VideoClipDataset, VideoRecord, read_metadata
from s2dm_lightning.data.flow import DIS_PRESETS, ESTIMATORS, FlowSettings
from s2dm_lightning.data.flow_cache import FlowCache
from s2dm_lightning.data.geometry import DEFAULT_FRAME_GEOMETRY, FrameGeometry, check_geometry
from s2dm_lightning.data.latent_cache import LatentCache, prepare_latent_cache
from s2dm_lightning.data.preprocess import PreprocessSummary, preprocess_flows
from s2dm_lightning.data.regionmm import import_regionmm_flows
from s2dm_lightning.data.video_io import VideoReadError, crop_box, read_video
from s2dm_lightning.run_lock import folder_lock
from s2dm_lightning.validation import check_choice, check_number

log = logging.getLogger(__name__)
KEY = "data.init_args."


def _check_arguments(arguments: dict) -> None:
    """The plain numbers and choices of a VideoDataModule's arguments, each named by its config key."""
    check_number(KEY + "resolution", arguments["resolution"], at_least=8)
    check_number(KEY + "flow_size", arguments["flow_size"], at_least=2)
    check_choice(KEY + "flow_estimator", arguments["flow_estimator"], ESTIMATORS)
    check_choice(KEY + "dis_preset", arguments["dis_preset"], DIS_PRESETS)
    check_number(KEY + "num_frames", arguments["num_frames"], at_least=2,
                 note="a clip is frame 1 and the frames whose flows from frame 1 condition S2DM")
    for name in ("batch_size", "val_videos"):
        check_number(KEY + name, arguments[name], at_least=1)
    check_number(KEY + "num_test_videos", arguments["num_test_videos"], at_least=1, optional=True)
    check_geometry(arguments["frame_geometry"], KEY + "frame_geometry")
    for name in ("num_workers", "preprocess_workers"):
        check_number(KEY + name, arguments[name], at_least=0)


class CacheFolderNotWritableError(PermissionError):
    """The flow cache folder cannot be created or written (a read-only ``data.root``, say)."""

    def __str__(self) -> str:
        return self.strerror


class VideoDataModule(L.LightningDataModule, ABC):
    """Base: videos under ``root`` with captions and a train/val/test split; subclasses implement ``list_records``.

    Args:
        root: dataset folder (the ``data.root`` value).
        resolution: frames are resized to resolution x resolution.
        flow_size: resolution of the stored flow/occlusion maps (= the diffusion resolution:
            32 for pixel-space synthetic, 16 for 128-px latent models).
        flow_estimator: ``"opencv-dis"`` or ``"opencv-farneback"``.
        dis_preset: DIS preset: ``"ultrafast"``, ``"fast"`` or ``"medium"``.
        num_frames: frames per clip, one from each of num_frames equal intervals.
        batch_size: videos per batch.
        num_workers: DataLoader worker processes.
        val_videos: validation uses the first N videos of the val split (or the test split).
        num_test_videos: length of the test dataset: the test clips cycled to N items (the evaluation's
            N generated videos; items then carry ``sample_index`` and ``repeat``, 0 on a clip's first
            occurrence); None = each test video once.
        cache_dir: flow cache folder; default ``<root>/flow_cache_<flow_size>``.
        preprocess_workers: processes used to compute missing flows (0 = in this process).
        regionmm_dir: import the flows from this folder of RegionMM/LFDM files (one per video,
            see ``data.regionmm``) instead of estimating them; None = estimate.
        frame_geometry: how frames that are not square become the model's square, for frames and
            flows alike (see ``data.geometry``): ``crop`` (the centred square, the default), ``pad``
            (the whole frame on black bars) or ``squash`` (stretched; circles become ellipses).
            Stored with the flow and latent caches and in checkpoints; ``sample --motion_from`` and
            ``--image`` then follow the model's.
    """

    def __init__(
        self,
        root: str,
        resolution: int = 32,
        flow_size: int = 32,
        flow_estimator: str = "opencv-dis",
        dis_preset: str = "medium",
        num_frames: int = 16,
        batch_size: int = 4,
        num_workers: int = 0,
        val_videos: int = 8,
        num_test_videos: int | None = None,
        cache_dir: str | None = None,
        preprocess_workers: int = 0,
        regionmm_dir: str | None = None,
        frame_geometry: FrameGeometry = DEFAULT_FRAME_GEOMETRY,
    ) -> None:
        super().__init__()
        _check_arguments(locals())  # every argument by its name, before anything is stored
        self.root = root
        self.regionmm_dir = regionmm_dir
        self.resolution = resolution
        self.num_frames = num_frames
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_videos = val_videos
        self.num_test_videos = num_test_videos
        self.preprocess_workers = preprocess_workers
        # Validates estimator and preset names now, not after an hour of training.
        self.flow_settings = FlowSettings(
            estimator=flow_estimator, dis_preset=dis_preset, flow_size=flow_size, frame_geometry=frame_geometry
        )
        self._default_cache_dir = cache_dir is None
        self.cache_dir = cache_dir if cache_dir is not None else str(Path(root) / f"flow_cache_{flow_size}")
        self.datasets: dict[str, VideoClipDataset] = {}

    @property
    def frame_geometry(self) -> str:
        """The frame geometry policy (``data.geometry``) of this dataset's frames and flows."""
        return self.flow_settings.frame_geometry

    # -- to implement ------------------------------------------------------------------------------

    @abstractmethod
    def list_records(self) -> list[VideoRecord]:
        """All videos of the dataset, every split."""

    def frame_crop(self) -> tuple[float, float, float, float] | None:
        """(top, bottom, left, right) box every frame is cut to before resizing and flow estimation; None = none.

        Fractions of the frame (all <= 1) or pixels, see ``video_io.crop_box``.
        """
        return None

    def check_crop_fits(self, records: list[VideoRecord]) -> None:
        """Before any work: the crop must fit the frames of the first readable video (one error, not one per video).

        Unreadable videos are passed over here: preprocessing reports them by name and goes on.
        """
        crop = self.frame_crop()
        if crop is None:
            return
        for record in records:
            try:
                frame = read_video(record.path, [0])[0]
            except VideoReadError:
                continue
            try:
                crop_box(crop, *frame.shape[:2])
            except ValueError as error:
                raise ValueError(
                    f"{KEY}crop={list(crop)} does not fit the {frame.shape[1]}x{frame.shape[0]} (width x height) "
                    f"frames of the dataset ('{record.path}'): {error}"
                ) from error
            return

    def records(self) -> list[VideoRecord]:
        """``list_records()`` with ``frame_crop()`` applied to every record."""
        crop = self.frame_crop()
        records = self.list_records()
        return records if crop is None else [dataclasses.replace(r, crop=tuple(crop)) for r in records]

    def cache_source(self) -> dict | None:
        """What the cached flows depend on besides the flow settings (part of the cache's identity)."""
        source: dict = {}
        if self.frame_crop() is not None:
            source["crop"] = list(self.frame_crop())
        if self.regionmm_dir is not None:
            source["flows"] = "regionmm"
        return source or None

    # -- shared machinery --------------------------------------------------------------------------

    def check_root(self) -> Path:
        root = Path(self.root)
        if not root.is_dir():
            raise FileNotFoundError(
                f"dataset folder data.root={self.root!r} does not exist (resolved: '{root.resolve()}'); "
                "set data.root to the folder holding the dataset"
            )
        return root

    def flow_cache(self) -> FlowCache:
        try:
            return FlowCache(self.cache_dir, self.flow_settings, source=self.cache_source())
        except OSError as error:
            self._raise_if_cache_not_writable(error)
            raise

    def _raise_if_cache_not_writable(self, error: OSError) -> None:
        """A read-only or forbidden cache folder is a :class:`CacheFolderNotWritableError` naming the key."""
        if error.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            return
        default = " (the default, <data.root>/flow_cache_<flow_size>)" if self._default_cache_dir else ""
        raise CacheFolderNotWritableError(
            error.errno,
            f"cannot write the flow cache folder '{self.cache_dir}'{default}: {error.strerror}. Put the cache "
            "elsewhere with data.init_args.cache_dir (e.g. --data.init_args.cache_dir=/scratch/flow_cache)",
        ) from error

    def preprocess(self, progress: bool = True) -> PreprocessSummary:
        """Compute the missing flows of every video, print and return the summary."""
        self.check_root()
        records = self.records()
        self.check_crop_fits(records)
        try:  # the lock lives in the cache folder, so an unwritable one is named here, before it is taken
            Path(self.cache_dir).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            self._raise_if_cache_not_writable(error)
            raise
        with folder_lock(self.cache_dir, "flow cache", wait=True):  # a second preprocess waits, then finds it done
            if self.regionmm_dir is not None:
                summary = import_regionmm_flows(records, self.flow_cache(), self.regionmm_dir, progress)
            else:
                summary = preprocess_flows(records, self.flow_cache(), self.preprocess_workers, progress,
                                           num_frames=self.num_frames)
        print(summary)
        return summary

    def prepare_data(self) -> None:
        self.preprocess()

    def setup(self, stage: str | None = None) -> None:
        self.check_root()
        cache = self.flow_cache()
        records = self.records()
        self.check_crop_fits(records)
        available = [r for r in records if cache.has(r.video_id)]
        missing = [r.video_id for r in records if not cache.has(r.video_id)]
        if missing:
            log.warning(
                "%d of %d videos have no cached flow (preprocessing failed or was not run) and are left out: %s%s",
                len(missing),
                len(records),
                ", ".join(missing[:5]),
                " ..." if len(missing) > 5 else "",
            )
        by_split = {split: [r for r in available if r.split == split] for split in ("train", "val", "test")}
        val_source = by_split["val"] or by_split["test"]
        if stage in (None, "fit") and not by_split["train"]:
            raise ValueError(
                f"no training videos with cached flows under data.root={self.root!r} "
                f"({len(records)} listed, {len(missing)} without flow); run prepare_data() / `preprocess` first"
            )

        def make(records_: list[VideoRecord], train: bool) -> VideoClipDataset:
            return VideoClipDataset(records_, self.resolution, cache, self.num_frames, train=train)

        self.datasets = {
            "train": make(by_split["train"], True),
            "val": make(val_source[: self.val_videos], False),
            "test": make(by_split["test"], False),
            "predict": make(by_split["test"], False),
        }

    def use_latent_cache(
        self,
        cache_dir: str | Path,
        vae: torch.nn.Module,
        rank: int = 0,
        world_size: int = 1,
        barrier: Callable[[str], None] | None = None,
        require_complete: bool = True,
    ) -> LatentCache:
        """Encode the training videos missing from the latent cache ``cache_dir`` with ``vae`` (the model's,
        on its device), then have the training clips carry their latents instead of frames.

        ``setup`` must have run. ``rank``/``world_size``/``barrier``: DDP ranks share the encoding
        (see ``latent_cache.prepare_latent_cache``); ``require_complete``: a training video still
        without latents is an error naming it (training), else only reported (``preprocess``).
        """
        dataset = self._dataset("train")
        crop = self.frame_crop()
        source = {"crop": list(crop)} if crop is not None else None
        cache = prepare_latent_cache(cache_dir, dataset.records, dataset.resolution, source, vae, rank=rank,
                                     world_size=world_size, barrier=barrier, require_complete=require_complete,
                                     geometry=self.frame_geometry)
        dataset.latent_cache = cache
        return cache

    def captions(self) -> list[str]:
        """The distinct captions of the datasets ``setup`` built (checked against the text encoder's window)."""
        return sorted({record.caption for dataset in self.datasets.values() for record in dataset.records})

    def _dataset(self, name: str) -> VideoClipDataset:
        if name not in self.datasets:
            raise RuntimeError(
                f"{type(self).__name__}.setup() must run before the {name} dataloader is built"
            )
        return self.datasets[name]

    def _loader(self, dataset: VideoClipDataset, train: bool) -> DataLoader:
        # Training: torchdata's StatefulDataLoader, whose state_dict (the sampler's shuffle generator and position,
        # the workers' seed and each worker's frame generator) Lightning stores in every checkpoint, so that
        # `fit --ckpt_path last` continues the epoch with the clips an unbroken run draws (docs/resuming.md).
        loader_class = StatefulDataLoader if train else DataLoader
        with warnings.catch_warnings():
            # torchdata 0.11's constructor calls torch.set_vital, which torch 2.13 deprecates: a warning on every
            # fit that names nothing the user can change (tests/commands/test_quiet_cli.py).
            warnings.filterwarnings("ignore", message="'set_vital' is deprecated", category=UserWarning)
            return loader_class(
                dataset,
                batch_size=self.batch_size,
                shuffle=train,
                # Drop an incomplete last batch only when there is a full one to keep.
                drop_last=train and len(dataset) >= self.batch_size,
                num_workers=self.num_workers,
                persistent_workers=self.num_workers > 0,
            )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self._dataset("train"), train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self._dataset("val"), train=False)

    def test_dataloader(self) -> DataLoader:
        dataset = self._dataset("test")
        if self.num_test_videos is not None:
            dataset = CyclicDataset(dataset, self.num_test_videos)
        return self._loader(dataset, train=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self._dataset("predict"), train=False)


class VideoFolderDataModule(VideoDataModule):
    """Your own videos: ``root`` holds ``metadata.csv`` or ``metadata.json`` and the videos.

    Metadata keys: ``path`` (frame folder or video file, relative to root), ``caption``,
    ``split`` (train/val/test), optional ``video_id`` (default: path without suffix).
    metadata.json is a list of objects with these keys.

    Args:
        root: dataset folder (the ``data.root`` value).
        resolution: frames are resized to resolution x resolution.
        flow_size: resolution of the stored flow/occlusion maps (= the diffusion resolution).
        flow_estimator: ``"opencv-dis"`` or ``"opencv-farneback"``.
        dis_preset: DIS preset: ``"ultrafast"``, ``"fast"`` or ``"medium"``.
        num_frames: frames per clip, one from each of num_frames equal intervals.
        batch_size: videos per batch.
        num_workers: DataLoader worker processes.
        val_videos: validation uses the first N videos of the val split (or the test split).
        num_test_videos: length of the test dataset: the test clips cycled to N items (the evaluation's
            N generated videos; items then carry ``sample_index`` and ``repeat``, 0 on a clip's first
            occurrence); None = each test video once.
        cache_dir: flow cache folder; default ``<root>/flow_cache_<flow_size>``.
        preprocess_workers: processes used to compute missing flows (0 = in this process).
        regionmm_dir: import the flows from this folder of RegionMM/LFDM files (one per video,
            see ``data.regionmm``) instead of estimating them; None = estimate.
        frame_geometry: how frames that are not square become the model's square, for frames and
            flows alike (see ``data.geometry``): ``crop`` (the centred square, the default), ``pad``
            (the whole frame on black bars) or ``squash`` (stretched; circles become ellipses).
            Stored with the flow and latent caches and in checkpoints; ``sample --motion_from`` and
            ``--image`` then follow the model's.
    """

    def metadata_path(self) -> Path:
        root = self.check_root()
        for name in ("metadata.csv", "metadata.json"):
            if (root / name).exists():
                return root / name
        raise FileNotFoundError(f"data.root={self.root!r} holds neither metadata.csv nor metadata.json")

    def list_records(self) -> list[VideoRecord]:
        return read_metadata(self.metadata_path(), self.root)
