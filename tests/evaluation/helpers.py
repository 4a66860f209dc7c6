"""Tiny in-memory clips, a data module over them and a fake 'generator' module, for the evaluation tests.

Importable (not a conftest) so that ``ddp_spawn`` workers can unpickle these classes.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset

from s2dm_lightning.data.datasets import CyclicDataset
from s2dm_lightning.evaluation.intervals import features_path, save_features, tensor_sha256
from s2dm_lightning.synthetic import SyntheticDataModule

FRAMES, SIZE = 4, 8


def quantized(x: torch.Tensor) -> torch.Tensor:
    return ((x.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1


class Clips(Dataset):
    """``n`` deterministic clips (F, 3, SIZE, SIZE) in [-1, 1] at uint8 levels, with flow and caption."""

    def __init__(self, n: int = 3, offset: int = 0) -> None:
        self.n, self.offset = n, offset

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(self.offset + i)
        base = torch.rand(3, 1, 1, generator=g) * 1.6 - 0.8
        frames = base + 0.3 * torch.rand(FRAMES, 3, SIZE, SIZE, generator=g)
        return {"frames": quantized(frames), "flow": torch.zeros(FRAMES, 3, 4, 4), "caption": f"clip {i}",
                "video_id": f"clip{self.offset + i}"}


class ClipDataModule(pl.LightningDataModule):
    def __init__(self, num_test: int = 3, num_val: int = 4, batch_size: int = 2,
                 num_test_videos: int | None = None) -> None:
        super().__init__()
        self.num_test, self.num_val, self.batch_size = num_test, num_val, batch_size
        self.num_test_videos = num_test_videos

    def train_dataloader(self) -> DataLoader:
        return DataLoader(Clips(4, offset=1000), batch_size=self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(Clips(self.num_val, offset=500), batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader:
        dataset: Dataset = Clips(self.num_test)
        if self.num_test_videos is not None:
            dataset = CyclicDataset(dataset, self.num_test_videos)
        return DataLoader(dataset, batch_size=self.batch_size)


class FakeGenerator(pl.LightningModule):
    """'Generates' each video from its real clip plus noise seeded by its position and the run: the same
    videos whatever the batch size or number of processes."""

    def __init__(self, sampling_seed: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = nn.Linear(1, 1)
        self.generated = 0

    def fake(self, frames: torch.Tensor, keys: list[int]) -> torch.Tensor:
        run = getattr(self, "evaluation_run", 0)
        noise = torch.stack([torch.randn(frames.shape[1:], generator=torch.Generator().manual_seed(k + 7919 * run))
                             for k in keys])
        self.generated += len(keys)
        return (0.7 * frames.roll(1, dims=-1) + 0.3 * noise).clamp(-1, 1)

    def test_step(self, batch: dict, batch_idx: int) -> dict:
        keys = batch["sample_index"].tolist() if "sample_index" in batch else [int(v[4:]) for v in batch["video_id"]]
        return {"videos": self.fake(batch["frames"], keys), "real": batch["frames"]}

    def sample_videos(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        keys = [int(v[4:]) for v in batch["video_id"]]
        return self.fake(batch["frames"], keys)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self.layer(batch["frames"].mean().reshape(1, 1)).sum()

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        return None

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


class DDPFakeGenerator(FakeGenerator):
    def teardown(self, stage: str) -> None:
        # Lightning under pytest otherwise aborts now and then at interpreter exit
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def cpu_trainer(root: Path, callbacks: list, **kwargs) -> pl.Trainer:
    options = {"accelerator": "cpu", "devices": 1, "logger": False, "enable_checkpointing": False,
               "enable_progress_bar": False, "enable_model_summary": False, "default_root_dir": str(root)}
    options.update(kwargs)
    return pl.Trainer(callbacks=callbacks, **options)


def tiny_synthetic_datamodule(root: Path, **kwargs) -> SyntheticDataModule:
    """12 synthetic videos of 24 frames under ``root`` (16-frame clips, batches of 2); ``setup`` not yet run."""
    options = {"num_videos": 12, "frames_per_video": 24, "batch_size": 2, **kwargs}
    return SyntheticDataModule(root=str(root), **options)


def write_constructed_report(folder, real, generated, side_changes=None):
    """A report and its features file holding the given (constructed) features."""
    side = {"feature_network": {"kind": "custom", "sha256": "abc"}, "real_features_sha256": tensor_sha256(real),
            "preset": "s2dm", "num_real_videos": len(real), **(side_changes or {})}
    folder.mkdir(parents=True)
    report = folder / "evaluation_report.json"
    save_features(features_path(report), real, {0: generated}, side)
    report.write_text(json.dumps({"real_side": side, "generated_features": {"file": features_path(report).name}}))
    return report
