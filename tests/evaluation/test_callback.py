"""The evaluation callback through trainer.test / trainer.fit on tiny in-memory clips (fake generator)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from s2dm_lightning.evaluation import RandomConv3dFeatures, VideoMetricsCallback
from s2dm_lightning.evaluation.report import render_report, summarize_runs
from tests.evaluation.helpers import FRAMES, ClipDataModule, FakeGenerator, cpu_trainer


def tiny_extractor() -> RandomConv3dFeatures:
    return RandomConv3dFeatures(feature_dim=6, width=4)


def run_test(tmp_path, callback, datamodule=None, model=None):
    model = model or FakeGenerator()
    trainer = cpu_trainer(tmp_path, [callback])
    trainer.test(model, datamodule=datamodule or ClipDataModule())
    return trainer, model, json.loads(callback.last_report_path.read_text())


class TinyI3D(nn.Module):
    """Stands in for InceptionI3d (a real one costs seconds per video on this CPU): (B, 3, T, 224, 224) -> (B, 400)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(3, 400)
        self.num_features = 400

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1:] == (3, FRAMES, 224, 224)
        return self.proj(x.mean(dim=(2, 3, 4)))


def test_without_weights_test_stops_before_generating(tmp_path, monkeypatch):
    monkeypatch.delenv("S2DM_I3D_WEIGHTS", raising=False)
    model = FakeGenerator()
    with pytest.raises(FileNotFoundError) as error:
        cpu_trainer(tmp_path, [VideoMetricsCallback()]).test(model, datamodule=ClipDataModule())
    message = str(error.value)
    for needle in ("i3d_pretrained_400.pt", "i3d_torchscript.pt", "metrics.i3d_weights", "S2DM_I3D_WEIGHTS",
                   "allow_random_backbone"):
        assert needle in message
    assert model.generated == 0


def test_untrained_backbone_is_named_so_and_the_report_says_so_first(tmp_path, monkeypatch):
    monkeypatch.delenv("S2DM_I3D_WEIGHTS", raising=False)
    monkeypatch.setattr("s2dm_lightning.evaluation.features.InceptionI3d", TinyI3D)
    callback = VideoMetricsCallback(allow_random_backbone=True)
    trainer, _, report = run_test(tmp_path, callback)
    first_line = callback.last_report_path.read_text().splitlines()[0]
    assert first_line.startswith('{"notice": "NOT FVD/KVD: UNTRAINED')
    assert set(report["metrics"]) == {"fvd_untrained_i3d", "kvd_untrained_i3d"}
    assert report["is_fvd"] is False and report["feature_extractor"]["kind"] == "untrained_i3d"
    assert {"test/fvd_untrained_i3d", "test/kvd_untrained_i3d"} <= set(trainer.callback_metrics)
    assert "test/fvd" not in trainer.callback_metrics


def test_n_videos_cycle_the_test_conditions_and_real_clips_count_once(tmp_path):
    callback = VideoMetricsCallback(feature_extractor=tiny_extractor(), num_videos=7)
    datamodule = ClipDataModule(num_test=3)
    trainer, model, report = run_test(tmp_path, callback, datamodule)
    assert datamodule.num_test_videos == 7
    assert report["num_generated_videos"] == 7 and model.generated == 7
    assert report["num_real_videos"] == 3 and report["real_statistics"]["source"] == "computed"
    assert report["metrics"]["fvd_custom"] > 0 and report["feature_extractor"]["kind"] == "custom"
    assert report["notice"].startswith("NOT FVD/KVD") and report["runs_completed"] == 1
    assert report["summary"]["fvd_custom"]["std"] is None  # one run: no spread to report (ddof=1)
    assert trainer.callback_metrics["test/fvd_custom"] > 0


def test_videos_equal_to_the_real_clips_give_zero_fvd(tmp_path):
    class Copy(FakeGenerator):
        def test_step(self, batch, batch_idx):
            return {"videos": batch["frames"], "real": batch["frames"]}

    callback = VideoMetricsCallback(feature_extractor=tiny_extractor())
    _, _, report = run_test(tmp_path, callback, ClipDataModule(num_test=3), Copy())
    assert report["metrics"]["fvd_custom"] == pytest.approx(0.0, abs=1e-6)
    # KVD's unbiased estimator is not exactly 0 on identical sets (the cross term keeps the diagonal)
    assert abs(report["metrics"]["kvd_custom"]) < 1e-2


def test_kvd_subsets_and_their_size_are_checked(tmp_path):
    callback = VideoMetricsCallback(feature_extractor=tiny_extractor(), kvd_subsets=3, kvd_subset_size=2,
                                    num_videos=4)
    _, _, report = run_test(tmp_path, callback)
    assert "kvd_custom_std_over_subsets" in report["runs"][0]
    too_big = VideoMetricsCallback(feature_extractor=tiny_extractor(), kvd_subsets=2, kvd_subset_size=5)
    with pytest.raises(ValueError, match="kvd_subset_size"):
        cpu_trainer(tmp_path, [too_big]).test(FakeGenerator(), datamodule=ClipDataModule(num_test=3))


def test_fit_time_metrics_are_logged_every_n_rounds(tmp_path):
    callback = VideoMetricsCallback(feature_extractor=tiny_extractor(), val_every_n_rounds=2, val_num_videos=3)
    model = FakeGenerator()
    trainer = cpu_trainer(tmp_path, [callback], max_epochs=3, num_sanity_val_steps=0)
    trainer.fit(model, datamodule=ClipDataModule(num_val=4))
    assert {"val/fvd_custom", "val/kvd_custom"} <= set(trainer.callback_metrics)
    assert model.generated == 3  # only round 2 of 3 sampled, the first 3 validation videos
    assert callback._val_real is not None and callback._val_real.num_samples == 3


def test_fit_without_the_option_does_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("S2DM_I3D_WEIGHTS", raising=False)
    model = FakeGenerator()
    trainer = cpu_trainer(tmp_path, [VideoMetricsCallback()], max_epochs=1, num_sanity_val_steps=0)
    trainer.fit(model, datamodule=ClipDataModule())  # no weights: fine, nothing is evaluated
    assert model.generated == 0 and not any(k.startswith("val/fvd") for k in trainer.callback_metrics)


def test_report_first_line_and_run_summary():
    text = render_report("NOT FVD/KVD: test", {"metrics": {"fvd_x": 1.0}, "path": tmp_path_like()})
    assert text.splitlines()[0] == '{"notice": "NOT FVD/KVD: test",'
    assert json.loads(text)["metrics"] == {"fvd_x": 1.0}
    summary = summarize_runs([{"fvd": 1.0}, {"fvd": 3.0}], ["fvd"])
    assert summary["fvd"] == {"mean": 2.0, "std": pytest.approx(2**0.5), "n": 2, "values": [1.0, 3.0]}  # ddof=1


def tmp_path_like():
    from pathlib import Path

    return Path("/x/y")


def test_a_later_run_in_a_fresh_process_keeps_the_earlier_runs_of_the_report(tmp_path):
    """ddp_spawn starts new processes for every trainer.test of --n_runs: the report on disk carries the runs."""
    report_path = tmp_path / "report.json"
    model = FakeGenerator()
    for run in range(2):
        callback = VideoMetricsCallback(feature_extractor=tiny_extractor(), report_path=str(report_path))
        callback.n_runs, model.evaluation_run = 2, run
        cpu_trainer(tmp_path, [callback]).test(model, datamodule=ClipDataModule())
    report = json.loads(report_path.read_text())
    assert [r["run"] for r in report["runs"]] == [0, 1] and report["runs_completed"] == 2
    assert report["summary"]["fvd_custom"]["std"] > 0
