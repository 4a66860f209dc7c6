"""The lfdm preset end to end on a small MUG tree: LFDM's test subjects, linspace frames, cFVD and sFVD."""

from __future__ import annotations

import json

import pytest

from s2dm_lightning.data import MUGDataModule
from s2dm_lightning.data.sampling import linspace_frame_indices
from s2dm_lightning.evaluation import RandomConv3dFeatures, VideoMetricsCallback
from s2dm_lightning.evaluation.clips import real_dataset
from s2dm_lightning.evaluation.protocol import resolve_protocol
from tests.data.fake_datasets import make_mug_tree
from tests.evaluation.helpers import FakeGenerator, cpu_trainer


def test_lfdm_scores_lfdms_test_subjects_with_cfvd_and_sfvd(tmp_path):
    # subjects 001 and 020 are LFDM test subjects, 003 and 084 are not; 2 expressions x 2 takes of 6 frames
    make_mug_tree(tmp_path / "mug", subjects=("001", "003", "020", "084"), expressions=("anger", "fear"),
                  session_subjects=(), takes=2, num_frames=6, size=32)
    data = MUGDataModule(root=str(tmp_path / "mug"), cache_dir=str(tmp_path / "cache"), split="lfdm", num_frames=40,
                         resolution=128, frame_geometry="pad", flow_size=8, batch_size=4, dis_preset="ultrafast")
    callback = VideoMetricsCallback(feature_extractor=RandomConv3dFeatures(feature_dim=3, width=2), protocol="lfdm",
                                    bootstrap_resamples=20, report_path=str(tmp_path / "report.json"))
    cpu_trainer(tmp_path, [callback]).test(FakeGenerator(), datamodule=data)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["protocol"]["preset"] == "lfdm" and report["protocol"]["frames"] == "linspace"
    assert report["num_real_videos"] == 8 and report["num_generated_videos"] == 8  # 2 test subjects x 2 x 2
    run = report["runs"][0]
    assert set(run["cfvd_custom"]["groups"]) == {"anger", "fear"}
    assert set(run["sfvd_custom"]["groups"]) == {"001", "020"}
    assert run["cfvd_custom"]["value"] == pytest.approx(sum(run["cfvd_custom"]["groups"].values()) / 2)
    assert report["conditional_metrics"]["sfvd_custom"]["mean"] == pytest.approx(run["sfvd_custom"]["value"])
    assert run["intervals"]["num_resamples"] == 20
    # the real clips: 40 frames of each 6-frame test take, the last repeated as LFDM does
    assert report["protocol"]["frame_sampling"] == "linspace_last_repeated" and report["protocol"]["num_frames"] == 40
    real_clips = callback_real_clips(data)
    assert [item["video_id"] for item in real_clips] == [
        "001_anger_take000", "001_anger_take001", "001_fear_take000", "001_fear_take001",
        "020_anger_take000", "020_anger_take001", "020_fear_take000", "020_fear_take001"]
    assert real_clips[0]["frame_indices"].tolist() == linspace_frame_indices(6, 40) == [0, 1, 2, 3, 4, 5] + [5] * 34


def callback_real_clips(data):
    """The real clips the lfdm protocol plans for ``data`` (what the callback scored)."""
    clips = real_dataset(resolve_protocol("lfdm")[0], data, None)
    return [clips[i] for i in range(len(clips))]
