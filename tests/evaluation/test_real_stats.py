"""Real-video statistics: computed over the test clips once, cached on disk by key, reused."""

from __future__ import annotations

import json

import pytest
import torch

from s2dm_lightning.evaluation import RandomConv3dFeatures, VideoMetricsCallback
from s2dm_lightning.synthetic import SyntheticDataModule
from tests.evaluation.helpers import FakeGenerator, cpu_trainer


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluation") / "synthetic"
    SyntheticDataModule(root=str(root), num_videos=12, frames_per_video=16).prepare_data()
    return root


def evaluate(tmp_path, root, cache_dir, feature_dim=6, num_videos=4):
    callback = VideoMetricsCallback(feature_extractor=RandomConv3dFeatures(feature_dim=feature_dim, width=4),
                                    num_videos=num_videos, real_stats_cache_dir=str(cache_dir))
    datamodule = SyntheticDataModule(root=str(root), num_videos=12, frames_per_video=16, batch_size=2)
    cpu_trainer(tmp_path, [callback]).test(FakeGenerator(), datamodule=datamodule)
    return callback, json.loads(callback.last_report_path.read_text())


def test_real_statistics_are_cached_and_reused(tmp_path, synthetic_root):
    cache_dir = tmp_path / "real_stats"
    first, report = evaluate(tmp_path / "a", synthetic_root, cache_dir)
    files = list(cache_dir.glob("real_*.pt"))
    assert first.real_feature_passes == 1 and report["real_statistics"]["source"] == "computed"
    assert len(files) == 1 and report["real_statistics"]["cache_file"] == str(files[0])
    key = report["real_statistics"]["key"]
    assert key["data"]["num_frames"] == 16 and key["data"]["resolution"] == 32
    assert key["data"]["frame_sampling"] == "interval_first_frame" and key["features"]["kind"] == "custom"
    mtime = files[0].stat().st_mtime_ns

    second, again = evaluate(tmp_path / "b", synthetic_root, cache_dir)
    assert second.real_feature_passes == 0 and again["real_statistics"]["source"] == "cache"
    assert files[0].stat().st_mtime_ns == mtime
    assert again["metrics"] == report["metrics"]

    # another feature network is another key: computed anew, in its own file
    third, other = evaluate(tmp_path / "c", synthetic_root, cache_dir, feature_dim=5)
    assert third.real_feature_passes == 1 and other["real_statistics"]["source"] == "computed"
    assert len(list(cache_dir.glob("real_*.pt"))) == 2


def test_n_runs_in_one_process_reuse_the_real_statistics_in_memory(tmp_path, synthetic_root):
    callback = VideoMetricsCallback(feature_extractor=RandomConv3dFeatures(feature_dim=6, width=4),
                                    num_videos=4, real_stats_cache_dir=str(tmp_path / "cache"))
    callback.n_runs = 2
    datamodule = SyntheticDataModule(root=str(synthetic_root), num_videos=12, frames_per_video=16, batch_size=2)
    trainer, model = cpu_trainer(tmp_path, [callback]), FakeGenerator()
    for run in range(2):
        model.evaluation_run = run
        trainer.test(model, datamodule=datamodule)
    report = json.loads(callback.last_report_path.read_text())
    assert callback.real_feature_passes == 1 and report["real_statistics"]["source"] == "memory"
    values = [run["fvd_custom"] for run in report["runs"]]
    assert report["runs_completed"] == 2 and values[0] != values[1]
    assert report["summary"]["fvd_custom"]["mean"] == pytest.approx(sum(values) / 2)
    assert report["summary"]["fvd_custom"]["std"] == pytest.approx(abs(values[0] - values[1]) / 2**0.5)  # ddof=1


def test_num_test_videos_cycles_the_test_split(synthetic_root):
    datamodule = SyntheticDataModule(root=str(synthetic_root), num_videos=12, frames_per_video=16, batch_size=4,
                                     num_test_videos=5)
    datamodule.setup("test")
    clips = len(datamodule.datasets["test"])
    batches = list(datamodule.test_dataloader())
    ids = [v for batch in batches for v in batch["video_id"]]
    repeats = [int(r) for batch in batches for r in batch["repeat"]]
    assert len(ids) == 5 and clips == 2
    assert ids == [ids[i % clips] for i in range(5)] and repeats == [i // clips for i in range(5)]
    assert [int(i) for batch in batches for i in batch["sample_index"]] == list(range(5))
    assert torch.equal(batches[0]["frames"][0], batches[0]["frames"][2])  # the same deterministic clip
