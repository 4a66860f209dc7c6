"""Training from packed clips (:mod:`.shards`) streamed from a folder or an object store, with litdata.

``StreamingVideoDataModule(input_dir=...)`` reads ``<input_dir>/train`` (and ``<input_dir>/val`` when it
exists) with litdata's ``StreamingDataset`` / ``StreamingDataLoader``: ``input_dir`` is a local folder or an
``s3://bucket/prefix`` URI (credentials and endpoint from the usual AWS variables or ``storage_options``).

- **Shuffling**: litdata shuffles the order of the chunks and the items inside them, anew each epoch from
  ``seed`` and the epoch number.
- **Ranks and workers**: litdata gives each DDP rank, then each of its workers, its own chunks (or parts of
  them); a clip is read at most once per epoch over all ranks. With several ranks litdata drops the last
  items so that every rank gets the same number of batches, so no rank waits in a collective for another:
  from a local disk or an object store (litdata 0.2.76's ``FullShuffle``) ``N mod (world_size * batch_size)``
  of the ``N`` clips an epoch, different ones as the shuffle changes. On a parallel file system mount (NFS,
  Lustre, GPFS, ...) litdata uses its ``WindowShuffle`` instead, which drops more, the same clips every
  epoch, and can leave the ranks unequal (docs/streaming.md), which would hang DDP: the training loader
  refuses such a split (:func:`check_ranks_get_equal_batches`); ``LITDATA_POSIX_FAST=0`` selects ``FullShuffle``.
- **Resuming**: the ``StreamingDataLoader`` has ``state_dict`` / ``load_state_dict``; Lightning stores it in
  every checkpoint, so ``fit --ckpt_path last`` continues the epoch where the checkpoint left it, and the
  epochs after it are those of an unbroken run (:class:`EpochEndingStreamingDataLoader`).

Items are those of the file-based clips (``frames`` in [-1, 1] (F, 3, R, R), ``flow``, ``caption``,
``video_id``, ``frame_indices``) plus ``clip_id``. The settings the clips were made with come from the
shard set (``resolution``, ``flow_settings``, ``frame_geometry``, ``captions()``), so the model's checks
(flow size, frame size, text length, a checkpoint's frame geometry) apply as with the folder datamodules;
the optional arguments of the same names say what the config expects, and a shard set made otherwise is
an error naming both.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import Any

import lightning as L

from s2dm_lightning.data.datasets import frames_to_tensor
from s2dm_lightning.data.flow import FlowSettings
from s2dm_lightning.data.shards import read_shard_metadata, require_litdata

KEY = "data.init_args."


def _join(input_dir: str, split: str) -> str:
    return f"{input_dir.rstrip('/')}/{split}"


def _is_plain_http_endpoint(storage_options: dict[str, Any]) -> bool:
    endpoint = storage_options.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL") or ""
    return endpoint.startswith("http://")


def _allow_plain_http_for_obstore() -> None:
    """Let litdata's obstore downloads reach an ``http://`` endpoint (MinIO on a lab server, a local test server).

    litdata 0.2.x fetches ``index.json`` with boto3, which speaks plain HTTP, but the chunks with obstore, whose
    client refuses ``http://`` unless its ``allow_http`` option is set, and litdata passes no way to set it:
    its module-level client options get the flag here (only for an ``http://`` endpoint; HTTPS is untouched).
    """
    from litdata.streaming import downloader

    options = getattr(downloader, "_OBSTORE_CLIENT_OPTIONS", None)
    if isinstance(options, dict) and not options.get("allow_http"):
        downloader._OBSTORE_CLIENT_OPTIONS = {**options, "allow_http": True}


def _allow_plain_http_in_worker(worker_id: int) -> None:
    """``worker_init_fn``: the same in each loader worker (they may be spawned, re-importing litdata)."""
    _allow_plain_http_for_obstore()


def _clip_item(item: dict[str, Any], resolution: int, geometry: str) -> dict[str, Any]:
    """A packed clip as the model's batch item: frames to float [-1, 1] (F, 3, R, R)."""
    return {**item, "frames": frames_to_tensor(item["frames"], resolution, geometry)}


@functools.cache
def epoch_ending_loader_class() -> type:
    """litdata's ``StreamingDataLoader`` whose restored epoch ends when its last batch has been yielded.

    litdata 0.2.76 marks a loader given a mid-epoch ``load_state_dict`` as restoring, and clears the mark only
    when an iteration runs into ``StopIteration``. Lightning ends an epoch by count (``len(loader)`` batches)
    and never asks for the one after the last, so the next epoch's ``iter`` replayed the restored epoch from
    the checkpoint's position instead of starting a new shuffle. Here a new iteration after the restored epoch
    has yielded all its clips (litdata's own test of a finished epoch) starts the next epoch, as in an
    unbroken run. A class made on first use: litdata is an optional extra.
    """
    litdata = require_litdata()

    class EpochEndingStreamingDataLoader(litdata.StreamingDataLoader):
        def __iter__(self) -> Any:
            if self.restore and self._num_samples_yielded_streaming >= len(self.dataset):
                self.restore = False
            return super().__iter__()

    return EpochEndingStreamingDataLoader


def check_ranks_get_equal_batches(dataset: Any, num_workers: int, batch_size: int, where: str) -> None:
    """Refuse a DDP split in which the ranks would get different numbers of training batches an epoch (or none).

    A rank that runs out first leaves the others waiting in a collective (a hang, not an error). litdata's
    ``FullShuffle`` always splits evenly; its ``WindowShuffle`` (parallel file systems) deals whole chunks to
    the workers and can leave a rank short. Every rank computes the same assignment of all workers (litdata's
    shuffler, which is deterministic in seed and epoch), so each can check alone, with no collective.
    """
    env = getattr(dataset, "distributed_env", None)
    if env is None or env.world_size < 2:
        return
    workers = max(num_workers, 1)
    dataset.get_len(workers, batch_size)  # builds litdata's shuffler
    _, intervals = dataset.shuffler.get_chunks_and_intervals_per_workers(env, workers, batch_size,
                                                                         dataset.current_epoch)
    clips = [sum(interval[2] - interval[1] for interval in worker) for worker in intervals]  # as litdata's get_len
    batches = [sum(count // batch_size for count in clips[rank * workers:(rank + 1) * workers])
               for rank in range(env.world_size)]
    shuffler = type(dataset.shuffler).__name__
    fix = ("set LITDATA_POSIX_FAST=0 in the job's environment (litdata then splits the clips evenly), or pack "
           "with smaller chunks (`pack --chunk_bytes`)" if shuffler == "WindowShuffle"
           else "use fewer ranks, workers or a smaller batch, or more clips")
    split = f"{env.world_size} ranks x {workers} workers, batch size {batch_size}; clips per worker {clips}"
    if max(batches) == 0:
        raise RuntimeError(f"{where}: no rank gets a full batch of the training clips ({split}), so every epoch "
                           f"would be empty (litdata's {shuffler}): {fix}")
    if len(set(batches)) > 1:
        raise RuntimeError(f"{where}: the training clips split into unequal numbers of batches per rank "
                           f"({batches} for {split}), so DDP would hang waiting for the rank that ran out "
                           f"(litdata's {shuffler} deals whole chunks to the workers): {fix}")


def _is_not_found(error: BaseException) -> bool:
    """Whether an object store's error says the key does not exist: botocore's ClientError (litdata's S3
    client) carries the HTTP status in ``response``; anything else (403, no network) is a real failure."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in {"404", "NoSuchKey", "NotFound"} or status == 404


class StreamingVideoDataModule(L.LightningDataModule):
    """Clips packed by ``python -m s2dm_lightning pack``, streamed from ``input_dir`` (a folder or ``s3://``).

    Args:
        input_dir: the shard set: a folder or URI holding ``train/`` (and optionally ``val/``).
        batch_size: clips per batch (per rank).
        num_workers: loader worker processes; each reads its own chunks.
        seed: shuffle seed (chunk order and items within chunks, anew each epoch).
        shuffle: shuffle the training clips.
        cache_dir: local folder for chunks downloaded from an object store (default: a temporary folder).
        max_cache_size: the most disk the downloaded chunks take (litdata's argument).
        storage_options: passed to litdata's object store client (e.g. ``{"endpoint_url": ...}``).
        resolution: expected frame size; None = the shard set's. Other values are an error.
        flow_size: expected flow map size; None = the shard set's.
        num_frames: expected frames per clip; None = the shard set's.
        frame_geometry: expected frame geometry policy; None = the shard set's.
    """

    def __init__(
        self,
        input_dir: str,
        batch_size: int = 4,
        num_workers: int = 0,
        seed: int = 0,
        shuffle: bool = True,
        cache_dir: str | None = None,
        max_cache_size: str = "25GB",
        storage_options: dict[str, Any] | None = None,
        resolution: int | None = None,
        flow_size: int | None = None,
        num_frames: int | None = None,
        frame_geometry: str | None = None,
    ) -> None:
        super().__init__()
        require_litdata()  # at config time: the missing extra is named before anything else happens
        self.input_dir = input_dir
        self.batch_size, self.num_workers, self.seed, self.shuffle = batch_size, num_workers, seed, shuffle
        self.cache_dir, self.max_cache_size = cache_dir, max_cache_size
        self.storage_options = dict(storage_options or {})
        self.expected = {"resolution": resolution, "flow_size": flow_size, "num_frames": num_frames,
                         "frame_geometry": frame_geometry}
        self.metadata: dict[str, dict[str, Any]] = {}
        self._datasets: dict[str, Any] = {}
        self._temporary_cache: tempfile.TemporaryDirectory | None = None

    def _train(self) -> dict[str, Any]:
        """The training shard set's metadata, read (and checked) on first use: the config parses without it."""
        if "train" not in self.metadata:
            self.metadata["train"] = self._read_metadata("train")
        return self.metadata["train"]

    # -- the shard set's settings, as the folder datamodules expose them ------------------------------
    @property
    def resolution(self) -> int:
        return int(self._train()["resolution"])

    @property
    def num_frames(self) -> int:
        return int(self._train()["num_frames"])

    @property
    def frame_geometry(self) -> str:
        return str(self._train()["frame_geometry"])

    @property
    def flow_settings(self) -> FlowSettings:
        return FlowSettings(**self._train()["flow_settings"])

    def captions(self) -> list[str]:
        self._train()
        return sorted({caption for metadata in self.metadata.values() for caption in metadata["captions"]})

    # -- reading -----------------------------------------------------------------------------------
    def _cache_root(self) -> str:
        if self.cache_dir is not None:
            return self.cache_dir
        if self._temporary_cache is None:
            self._temporary_cache = tempfile.TemporaryDirectory(prefix="s2dm-shards-")
        return self._temporary_cache.name

    def _dataset(self, split: str, shuffle: bool, as_clips: bool = True) -> Any:
        """litdata's dataset of ``split``; ``as_clips=False``: raw items (to fetch the index before it is read)."""
        litdata = require_litdata()
        location = _join(self.input_dir, split)
        remote = "://" in self.input_dir
        cache = str(Path(self._cache_root()) / split) if remote else None
        if remote and _is_plain_http_endpoint(self.storage_options):
            _allow_plain_http_for_obstore()
        return litdata.StreamingDataset(
            location, cache_dir=cache, shuffle=shuffle, seed=self.seed, max_cache_size=self.max_cache_size,
            storage_options=self.storage_options or None,
            transform=functools.partial(_clip_item, resolution=self.resolution, geometry=self.frame_geometry)
            if as_clips else None,
        )

    def _read_metadata(self, split: str) -> dict[str, Any]:
        """The shard set's ``s2dm`` section of ``split``, checked against the expected settings."""
        location = _join(self.input_dir, split)
        if "://" not in location and not (Path(location) / "index.json").is_file():
            raise FileNotFoundError(f"{KEY}input_dir={self.input_dir!r}: no shard set at '{location}' (no "
                                    "index.json); write one with `python -m s2dm_lightning pack`")
        dataset = self._dataset(split, shuffle=False, as_clips=False) if "://" in location else None
        index = Path(dataset.input_dir.path) / "index.json" if dataset is not None else Path(location) / "index.json"
        metadata = read_shard_metadata(index, location)
        found = {"resolution": metadata["resolution"], "flow_size": metadata["flow_settings"]["flow_size"],
                 "num_frames": metadata["num_frames"], "frame_geometry": metadata["frame_geometry"]}
        for name, expected in self.expected.items():
            if expected is not None and expected != found[name]:
                raise ValueError(f"{KEY}{name}={expected!r}, but the shard set '{location}' was packed with "
                                 f"{name}={found[name]!r}: pack the dataset again with that setting, or change "
                                 f"{KEY}{name}")
        if self.metadata.get("train") is not None:
            train = self.metadata["train"]
            for name in ("flow_settings", "resolution", "num_frames", "frame_geometry", "source"):
                if metadata.get(name) != train.get(name):
                    raise ValueError(f"shard sets '{_join(self.input_dir, 'train')}' and '{location}' were packed "
                                     f"with different {name} ({train.get(name)!r} vs {metadata.get(name)!r}): "
                                     "pack both from one config")
        return metadata

    def _has_split(self, split: str) -> bool:
        location = _join(self.input_dir, split)
        if "://" not in location:
            return (Path(location) / "index.json").is_file()
        try:
            self._read_metadata(split)
        except (FileNotFoundError, ValueError, OSError):
            return False
        except Exception as error:  # noqa: BLE001 - the object store's client raises its own types
            if _is_not_found(error):
                return False
            raise
        return True

    def setup(self, stage: str | None = None) -> None:
        self._train()
        if "train" not in self._datasets:
            self._datasets["train"] = self._dataset("train", shuffle=self.shuffle)
        if "val" not in self._datasets and self._has_split("val"):
            self.metadata["val"] = self._read_metadata("val")
            self._datasets["val"] = self._dataset("val", shuffle=False)

    def _loader(self, split: str) -> Any:
        if split not in self._datasets:
            raise RuntimeError(f"{type(self).__name__}: no '{split}' shard set under {self.input_dir!r} "
                               "(or setup() has not run)")
        remote_http = "://" in self.input_dir and _is_plain_http_endpoint(self.storage_options)
        return epoch_ending_loader_class()(self._datasets[split], batch_size=self.batch_size,
                                           num_workers=self.num_workers,
                                           worker_init_fn=_allow_plain_http_in_worker if remote_http else None)

    def train_dataloader(self) -> Any:
        check_ranks_get_equal_batches(self._datasets.get("train"), self.num_workers, self.batch_size,
                                      f"{KEY}input_dir={self.input_dir!r}")
        return self._loader("train")

    def val_dataloader(self) -> Any:
        return self._loader("val") if "val" in self._datasets else []  # no val/ shards: no validation
