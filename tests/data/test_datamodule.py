from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import DataLoader

from s2dm_lightning.data import VideoClipDataset, VideoFolderDataModule
from s2dm_lightning.flow_format import identity_condition
from s2dm_lightning.synthetic import SyntheticDataModule
from tests.data.conftest import moving_texture_video, write_frames, write_mp4


@pytest.fixture(scope="module")
def synthetic_module(tmp_path_factory):
    root = tmp_path_factory.mktemp("dm") / "synthetic"
    module = SyntheticDataModule(
        root=str(root), num_videos=12, frames_per_video=20, batch_size=2, val_videos=2, dis_preset="fast"
    )
    module.prepare_data()
    module.setup("fit")
    return module


def test_train_batches(synthetic_module):
    batch = next(iter(synthetic_module.train_dataloader()))
    assert batch["frames"].shape == (2, 16, 3, 32, 32) and batch["frames"].dtype == torch.float32
    assert batch["frames"].min() >= -1 and batch["frames"].max() <= 1
    assert batch["flow"].shape == (2, 16, 3, 32, 32) and batch["flow"].dtype == torch.float32
    assert len(batch["caption"]) == 2 and isinstance(batch["caption"][0], str)
    assert len(batch["video_id"]) == 2
    assert (batch["frame_indices"][:, 0] == 0).all()
    identity = identity_condition(32, 32)
    for flow in batch["flow"]:
        assert torch.equal(flow[0], identity)  # first frame: identity grid, occlusion exactly 1
        assert not torch.equal(flow[-1], identity)  # the shape moved


def test_evaluation_is_deterministic_and_uses_test_split(synthetic_module):
    module = synthetic_module
    val = module.datasets["val"]
    assert len(val) == 2 and all(r.split == "test" for r in val.records)
    assert [r.video_id for r in module.datasets["predict"].records] == [
        r.video_id for r in module.datasets["test"].records
    ]
    first = next(iter(module.val_dataloader()))
    second = next(iter(module.val_dataloader()))
    assert torch.equal(first["frame_indices"], second["frame_indices"])
    assert torch.equal(first["frames"], second["frames"])
    assert first["frame_indices"][0].tolist() == [i * 20 // 16 for i in range(16)]


def test_frames_match_flow_direction(synthetic_module):
    # The flow of a video moving right points back to the left (source is left of target).
    dataset = synthetic_module.datasets["train"]
    for index, record in enumerate(dataset.records):
        if record.caption.endswith("moves to the right"):
            item = dataset[index]
            dx = item["flow"][-1, 0] - identity_condition(32, 32)[0]
            assert dx.min() < -0.3 and dx.max() < 0.1
            return
    pytest.fail("the seeded synthetic split has no training video moving right; the check did not run")


def test_worker_generators_differ(synthetic_module):
    dataset = VideoClipDataset(
        [synthetic_module.datasets["train"].records[0]] * 4,
        resolution=16,
        flow_cache=synthetic_module.flow_cache(),
        num_frames=8,
        train=True,
    )
    loader = DataLoader(dataset, batch_size=1, num_workers=2)
    draws = [tuple(b["frame_indices"][0].tolist()) for b in loader]
    assert len(set(draws)) > 1  # each worker draws its own frames
    assert draws[0][0] == 0 and next(iter(dataset))["frames"].shape == (8, 3, 16, 16)


def test_folder_module_with_json_metadata_and_mp4(tmp_path):
    write_frames(tmp_path / "clips" / "one", moving_texture_video(num_frames=20, size=40, seed=1))
    write_mp4(tmp_path / "clips" / "two.mp4", moving_texture_video(num_frames=10, size=64, seed=2))
    metadata = [
        {"path": "clips/one", "caption": "texture pans", "split": "train"},
        {"video_id": "second", "path": "clips/two.mp4", "caption": "texture pans too", "split": "test"},
    ]
    (tmp_path / "metadata.json").write_text(json.dumps(metadata))
    module = VideoFolderDataModule(root=str(tmp_path), resolution=24, flow_size=8, batch_size=4)
    module.prepare_data()
    assert (tmp_path / "flow_cache_8" / "meta.json").exists()
    module.setup()
    with pytest.warns(UserWarning, match="sampled with repeats"):
        batch = next(iter(module.test_dataloader()))
    assert batch["video_id"] == ["second"] and batch["frames"].shape == (1, 16, 3, 24, 24)
    assert batch["flow"].shape == (1, 16, 3, 8, 8)
    train = next(iter(module.train_dataloader()))
    assert train["video_id"] == ["clips/one"] and train["frames"].shape == (1, 16, 3, 24, 24)


def test_bad_metadata(tmp_path):  # a missing data.root: tests/bad_input/test_data.py
    (tmp_path / "metadata.csv").write_text("video_id,path,split\nx,clips/x,train\n")
    with pytest.raises(ValueError, match=r"metadata.csv.*\['caption'\]"):
        VideoFolderDataModule(root=str(tmp_path)).list_records()
    (tmp_path / "metadata.csv").unlink()
    with pytest.raises(FileNotFoundError, match="metadata.csv nor metadata.json"):
        VideoFolderDataModule(root=str(tmp_path)).list_records()


def test_cli_arguments_from_signature():
    import jsonargparse

    parser = jsonargparse.ArgumentParser()
    parser.add_class_arguments(SyntheticDataModule, "data")
    config = parser.parse_args(["--data.root=somewhere", "--data.flow_size=16"])
    assert config.data.root == "somewhere" and config.data.flow_size == 16 and config.data.num_frames == 16
    assert "flow/occlusion" in parser.format_help()
