"""DDP bookkeeping of the evaluation: which dataset position each local sample is, and ordered gathers.

Lightning gives every rank a ``DistributedSampler`` (``shuffle=False`` for test and validation) that
pads the index list by repeating its first items until its length divides by the world size; rank r
takes positions r, r + W, r + 2W, ... of the padded list. A sample whose position is >= the dataset
length is such a padded duplicate: the evaluation drops it, so N generated videos are counted exactly
once whatever the world size. Features are gathered with their positions and put back in dataset
order, so KVD's random subsets and every other order-dependent step see the single-process order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler
from torchmetrics.utilities.distributed import gather_all_tensors


def distributed_world() -> tuple[int, int]:
    """(rank, world size) of the default process group, (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class PositionTracker:
    """Dataset positions of the samples one rank sees, in the order its dataloader yields them.

    Args:
        dataloader: the rank's dataloader (its sampler says how the dataset was split).
        world_size: number of processes.
    """

    def __init__(self, dataloader: DataLoader, world_size: int) -> None:
        self.dataset_length = len(dataloader.dataset)  # type: ignore[arg-type]
        sampler = dataloader.sampler
        if world_size > 1 and not isinstance(sampler, DistributedSampler):
            raise RuntimeError(
                f"the evaluation runs on {world_size} processes but the dataloader's sampler is "
                f"{type(sampler).__name__}, not a DistributedSampler: every rank would see every video. "
                "Keep the Trainer's use_distributed_sampler=True."
            )
        if isinstance(sampler, DistributedSampler):
            self.rank, self.step = sampler.rank, sampler.num_replicas
        else:
            self.rank, self.step = 0, 1
        self.seen = 0

    def next_positions(self, batch_size: int) -> torch.Tensor:
        """Positions (in the padded list) of the next ``batch_size`` samples of this rank."""
        local = torch.arange(self.seen, self.seen + batch_size)
        self.seen += batch_size
        return self.rank + local * self.step

    def keep(self, positions: torch.Tensor, limit: int | None = None) -> torch.Tensor:
        """Boolean mask of the positions that are real samples (not padding) and below ``limit``."""
        bound = self.dataset_length if limit is None else min(limit, self.dataset_length)
        return positions < bound


def gather_in_order(features: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """All ranks' (n_r, d) features, concatenated and sorted by their dataset positions.

    Collective under DDP (every rank must call it); a plain sort by position without a process group.

    Raises:
        RuntimeError: if a position occurs twice (a sample would be counted twice).
    """
    positions = positions.to(features.device)
    if distributed_world()[1] > 1:
        features = torch.cat(gather_all_tensors(features.contiguous()))
        positions = torch.cat(gather_all_tensors(positions.contiguous()))
    order = torch.argsort(positions)
    ordered = positions[order]
    if len(ordered) > 1 and bool((ordered[1:] == ordered[:-1]).any()):
        raise RuntimeError("a dataset position was gathered twice; samples would be counted twice")
    return features[order]


class PositionedFeatures:
    """Features of one side (generated or real) on this rank, with their dataset positions."""

    def __init__(self) -> None:
        self.feats: list[torch.Tensor] = []
        self.positions: list[torch.Tensor] = []

    def add(self, feats: torch.Tensor, positions: torch.Tensor) -> None:
        self.feats.append(feats)
        self.positions.append(positions.to(feats.device))

    def tensors(self, dim: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, dim) features and (n,) positions on ``device``; empty tensors if this rank saw nothing."""
        if not self.feats:
            return torch.zeros(0, dim, dtype=torch.float64, device=device), torch.zeros(0, dtype=torch.long, device=device)
        return torch.cat(self.feats).to(device), torch.cat(self.positions).to(device)


def first_loader(loaders: Any) -> Any:
    """The first dataloader of a trainer's ``test_dataloaders`` / ``val_dataloaders`` (one or a list)."""
    return loaders[0] if isinstance(loaders, (list, tuple)) else loaders


def select_items(batch: Mapping[str, Any], index: list[int]) -> dict[str, Any]:
    """The items ``index`` of a default-collated batch dict."""
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            out[key] = value[index]
        elif isinstance(value, (list, tuple)):
            out[key] = [value[i] for i in index]
        else:
            out[key] = value
    return out
