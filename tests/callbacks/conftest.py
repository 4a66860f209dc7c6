"""A tiny dataset of fake videos and a tiny LightningModule that 'samples' by shifting frames."""

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from s2dm_lightning.flow_format import identity_condition

FRAMES, SIZE, FLOW_SIZE = 4, 16, 8


class FakeVideos(Dataset):
    def __init__(self, n: int = 5):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        gen = torch.Generator().manual_seed(i)
        flow = identity_condition(FLOW_SIZE, FLOW_SIZE).repeat(FRAMES, 1, 1, 1)
        flow[:, 0] += torch.linspace(0, 0.3, FRAMES)[:, None, None]  # moves further every frame
        return {
            "frames": torch.rand(FRAMES, 3, SIZE, SIZE, generator=gen) * 2 - 1,
            "flow": flow,
            "caption": f"square number {i} moves right",
            "video_id": f"subject{i}/take{i:03d}",
        }


class FakeVideoModule(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.sample_calls: list[int] = []

    def training_step(self, batch, batch_idx):
        return self.layer(batch["frames"].mean().reshape(1, 1)).sum()

    def validation_step(self, batch, batch_idx):
        return None

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def sample_videos(self, batch, generator):
        self.sample_calls.append(len(batch["video_id"]))
        assert set(batch) == {"frames", "flow", "caption", "video_id"}
        assert len(batch["caption"]) == batch["frames"].shape[0] == batch["flow"].shape[0]
        noise = torch.randn(batch["frames"].shape, generator=generator) * 0.01
        return (torch.roll(batch["frames"], shifts=2, dims=-1) + noise).clamp(-1, 1)

    def predict_step(self, batch, batch_idx):
        return {
            "videos": torch.roll(batch["frames"], shifts=1, dims=1),
            "flow": batch["flow"],
            "caption": batch["caption"],
            "video_id": batch["video_id"],
        }


@pytest.fixture
def loader():
    return DataLoader(FakeVideos(5), batch_size=2, num_workers=0)


@pytest.fixture
def module():
    return FakeVideoModule()


@pytest.fixture
def video_shape():
    """(frames, size) of the fake videos."""
    return FRAMES, SIZE
