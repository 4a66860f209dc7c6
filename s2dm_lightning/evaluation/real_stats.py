"""Real-video statistics of the evaluation: computed once over the real clips, cached on disk by key.

Under the default ``s2dm`` protocol the real side is every clip of the test split exactly once (never the
cycled N items), drawn with the evaluation's deterministic 16-interval frame sampling and resized like the
generated videos; other protocols plan their clips in :mod:`s2dm_lightning.evaluation.clips`.
Under DDP each rank extracts a contiguous shard; the FVD sums merge through
:class:`~s2dm_lightning.metrics.FrechetVideoDistance`'s summed states and the KVD features are
gathered in dataset order, so the statistics equal the single-process ones.

The cache file ``real_<key>.pt`` holds FVD's mean / covariance / count, KVD's (n, d) features and the
key dict itself; the key covers everything that changes them: dataset class, root, the test records
(ids, paths, crops, file sizes and modification times), resolution, frame count and sampling, and the
feature network's identity (weights hash) and preprocessing.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from s2dm_lightning.data.geometry import DEFAULT_FRAME_GEOMETRY
from s2dm_lightning.evaluation.distributed import gather_in_order
from s2dm_lightning.evaluation.features import FeatureBackbone, extract_features
from s2dm_lightning.io import atomic_torch_save
from s2dm_lightning.metrics import FrechetVideoDistance
from s2dm_lightning.safe_load import load_torch_data

#: Bump when the way real statistics are computed changes, so old cache files stop matching.
CACHE_FORMAT = 1
#: The evaluation's frame sampling (see ``data.sampling``): first frame of each of F equal intervals.
EVAL_FRAME_SAMPLING = "interval_first_frame"


@dataclass
class RealStatistics:
    """Real-side statistics: FVD's mean (d,), covariance (d, d) and count, KVD's features (n, d); float64."""

    mean: torch.Tensor
    cov: torch.Tensor
    num_samples: int
    features: torch.Tensor

    def to_payload(self) -> dict[str, Any]:
        return {"mean": self.mean.cpu(), "cov": self.cov.cpu(), "num_samples": self.num_samples,
                "features": self.features.cpu()}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> RealStatistics:
        return cls(payload["mean"], payload["cov"], int(payload["num_samples"]), payload["features"])


def _stat(path: Path) -> list[int]:
    try:
        info = path.stat()
    except OSError:
        return [-1, -1]
    return [int(info.st_size), int(info.st_mtime_ns)]


def dataset_identity(dataset: Dataset, root: str | None = None) -> dict[str, Any] | None:
    """Plain values identifying the real clips of a ``VideoClipDataset``-like dataset, or None.

    Needs ``records`` (with ``video_id`` and ``path``), ``resolution`` and ``num_frames``; other
    datasets are not cached (their real features are recomputed every run). A protocol's
    :class:`~s2dm_lightning.evaluation.clips.RealClipDataset` adds its clip count and plan hash.
    """
    records = getattr(dataset, "records", None)
    if records is None or not hasattr(dataset, "resolution") or not hasattr(dataset, "num_frames"):
        return None
    if getattr(dataset, "train", False):
        raise ValueError("the real test clips must come from an evaluation dataset (train=False sampling)")
    digest = hashlib.sha256()
    for record in records:
        path = Path(record.path)
        line = [record.video_id, str(path), list(getattr(record, "crop", None) or []), _stat(path)]
        digest.update((json.dumps(line) + "\n").encode())
    return {
        "dataset": type(dataset).__name__,
        "root": os.path.abspath(root) if root else None,
        "num_videos": len(records),
        "records_sha256": digest.hexdigest(),
        "resolution": int(dataset.resolution),
        "num_frames": int(dataset.num_frames),
        "frame_sampling": getattr(dataset, "frame_sampling", EVAL_FRAME_SAMPLING),
        "frame_geometry": getattr(dataset, "geometry", DEFAULT_FRAME_GEOMETRY),
        **({"clips": len(dataset), "plan_sha256": dataset.plan_sha256()} if hasattr(dataset, "plan_sha256") else {}),
    }


def cache_key(data: dict[str, Any], backbone: FeatureBackbone) -> tuple[dict[str, Any], str]:
    """The key dict of the real statistics and its hex SHA-256."""
    key = {"format": CACHE_FORMAT, "data": data, "features": backbone.identity}
    return key, hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def cache_file(cache_dir: str | os.PathLike, key_hex: str) -> Path:
    return Path(cache_dir) / f"real_{key_hex[:24]}.pt"


def load_cached(path: Path, key: dict[str, Any]) -> RealStatistics | None:
    """The statistics in ``path`` if it exists and was written for exactly ``key``, else None."""
    if not path.is_file():
        return None
    payload = load_torch_data(path, "real-statistics cache file")
    if not isinstance(payload, dict) or json.dumps(payload.get("key"), sort_keys=True) != json.dumps(key, sort_keys=True):
        return None
    return RealStatistics.from_payload(payload)


def save_cached(path: Path, key: dict[str, Any], stats: RealStatistics) -> None:
    """Write the statistics and their key to ``path`` atomically."""
    atomic_torch_save(path, {**stats.to_payload(), "key": key})


def shard(num_items: int, rank: int, world_size: int) -> range:
    """Rank ``rank``'s contiguous share of ``range(num_items)`` (no padding, no duplicates)."""
    return range(rank * num_items // world_size, (rank + 1) * num_items // world_size)


def compute_real_statistics(
    dataset: Dataset,
    backbone: FeatureBackbone,
    device: torch.device | str,
    rank: int = 0,
    world_size: int = 1,
    batch_size: int = 8,
    num_workers: int = 0,
    progress: bool = True,
) -> RealStatistics:
    """Extract the features of every clip of ``dataset`` (this rank's shard) and merge them across ranks.

    Must be called on every rank together when ``world_size`` > 1 (the merge is collective).
    """
    n = len(dataset)  # type: ignore[arg-type]
    if n < max(2, world_size):
        raise ValueError(f"the real test set has {n} clips; FVD needs at least 2 (and one per DDP rank, {world_size})")
    indices = shard(n, rank, world_size)
    loader = DataLoader(Subset(dataset, list(indices)), batch_size=batch_size, num_workers=num_workers, shuffle=False)
    feats, positions = [], []
    start = indices.start
    bar = tqdm(total=len(indices), desc="Real test clips: features", unit="video", disable=not progress)
    for batch in loader:
        frames = batch["frames"] if isinstance(batch, dict) else batch
        feats.append(extract_features(backbone, frames, device))
        positions.append(torch.arange(start, start + len(frames), device=device))
        start += len(frames)
        bar.update(len(frames))
    bar.close()
    return merge_real_features(torch.cat(feats), torch.cat(positions), device)


def merge_real_features(local: torch.Tensor, positions: torch.Tensor, device: torch.device | str) -> RealStatistics:
    """Merge every rank's real features (with their dataset positions) into :class:`RealStatistics`.

    FVD's mean and covariance come from the summed states of a
    :class:`~s2dm_lightning.metrics.FrechetVideoDistance` synced across ranks; KVD's features are
    gathered in dataset order. Collective under DDP.
    """
    fvd = FrechetVideoDistance(feature_dim=local.shape[1]).to(device)
    if len(local):
        fvd.update_features(local, real=True)
    stats = fvd.real_statistics()  # the summed states, synced across ranks
    features = gather_in_order(local.to(device), positions)
    return RealStatistics(stats.mean.cpu(), stats.cov.cpu(), stats.num_samples, features.cpu())
