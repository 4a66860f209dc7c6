"""Two CPU processes (gloo): merged FVD/KVD states give the single-process value."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from s2dm_lightning.metrics import FrechetVideoDistance, KernelVideoDistance

D = 10
SPLIT = 23  # rank 0 gets the first 23 rows, rank 1 the rest: uneven on purpose


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(60, D, generator=gen, dtype=torch.float64)
    fake = torch.randn(60, D, generator=gen, dtype=torch.float64) * 1.2 + 0.3
    return real, fake


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        real, fake = _data()
        part = slice(0, SPLIT) if rank == 0 else slice(SPLIT, None)
        fvd, kvd = FrechetVideoDistance(feature_dim=D), KernelVideoDistance()
        for metric in (fvd, kvd):
            metric.update(real[part], real=True)
            metric.update(fake[part], real=False)
        fvd_value, (kvd_mean, _) = fvd.compute(), kvd.compute()
        n_real_stats, n_real_feats = fvd.real_statistics().num_samples, len(kvd.real_features_tensor())
        if rank == 0:
            torch.save(
                {"fvd": fvd_value, "kvd": kvd_mean, "n_stats": n_real_stats, "n_feats": n_real_feats},
                Path(out_dir) / "rank0.pt",
            )
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_merge_equals_single_process(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    merged = torch.load(tmp_path / "rank0.pt", weights_only=True)

    real, fake = _data()
    fvd, kvd = FrechetVideoDistance(feature_dim=D), KernelVideoDistance()
    for metric in (fvd, kvd):
        metric.update(real, real=True)
        metric.update(fake, real=False)
    assert merged["fvd"].item() == pytest.approx(fvd.compute().item(), rel=1e-10)
    assert merged["kvd"].item() == pytest.approx(kvd.compute()[0].item(), rel=1e-10)
    assert merged["n_stats"] == 60 and merged["n_feats"] == 60  # cache helpers see the gathered real side
