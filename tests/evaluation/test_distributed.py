"""Two CPU processes (gloo, ddp_spawn) evaluate the same videos as one process, with the same result.

N = 5 over 2 ranks: Lightning's DistributedSampler pads the test set to 6 items (a duplicate of item 0
on rank 1); the callback drops the duplicate. KVD uses random subsets, so the gathered features must
also come back in dataset order for the values to match.
"""

from __future__ import annotations

import json

import pytest

from s2dm_lightning.evaluation import RandomConv3dFeatures, VideoMetricsCallback
from tests.evaluation.helpers import ClipDataModule, DDPFakeGenerator, cpu_trainer, tiny_synthetic_datamodule

# The videos are the same bits on any number of ranks (elementwise, seeded per video), but their float32
# features come from a network run on each rank's share, a batch of another make-up: FVD and KVD (float64
# from those features, small values with cancellation) moved by up to 5.6e-7 and 7.3e-6 of their values
# between batchings of these clips, and by 4.5e-7 and 6.5e-6 with float64 features (the rounding scale).
# 1e-4 is >10x that; another run's videos move them by 4% and 530%.
METRIC_REL_TOL = 1e-4


def evaluate(root, run: int = 0, **trainer_kwargs) -> dict:
    callback = VideoMetricsCallback(feature_extractor=RandomConv3dFeatures(feature_dim=6, width=4), num_videos=5,
                                    kvd_subsets=4, kvd_subset_size=3, report_path=str(root / "report.json"))
    trainer = cpu_trainer(root, [callback], **trainer_kwargs)
    module = DDPFakeGenerator()
    module.evaluation_run = run
    trainer.test(module, datamodule=ClipDataModule(num_test=3, batch_size=2))
    return json.loads((root / "report.json").read_text())


def test_two_process_ddp_equals_one_process(tmp_path):
    single = evaluate(tmp_path / "single")
    ddp = evaluate(tmp_path / "ddp", strategy="ddp_spawn", devices=2)
    assert ddp["world_size"] == 2 and single["world_size"] == 1
    assert ddp["num_generated_videos"] == single["num_generated_videos"] == 5
    assert ddp["num_real_videos"] == single["num_real_videos"] == 3
    other = evaluate(tmp_path / "other", run=1)
    for name in ("fvd_custom", "kvd_custom"):
        assert ddp["metrics"][name] == pytest.approx(single["metrics"][name], rel=METRIC_REL_TOL)
        assert abs(other["metrics"][name] / single["metrics"][name] - 1) > 100 * METRIC_REL_TOL, "other videos"
    std = "kvd_custom_std_over_subsets"
    assert ddp["runs"][0][std] == pytest.approx(single["runs"][0][std], rel=METRIC_REL_TOL)


PRESET_SETTINGS = {
    "s2dm": {},
    "stylegan-v": {"num_real_clips": 5},
    "lvdm": {"num_real_clips": 5},
    "custom": {"real_split": "all", "frames": "consecutive", "frame_stride": 1, "num_real_clips": 7,
               "mp4_round_trip": True},
}


def evaluate_preset(root, data_root, preset: str, **trainer_kwargs) -> dict:
    callback = VideoMetricsCallback(feature_extractor=RandomConv3dFeatures(feature_dim=6, width=4), num_videos=5,
                                    protocol=preset, report_path=str(root / "report.json"),
                                    real_stats_cache_dir=str(root / "cache"), **PRESET_SETTINGS[preset])
    trainer = cpu_trainer(root, [callback], **trainer_kwargs)
    trainer.test(DDPFakeGenerator(), datamodule=tiny_synthetic_datamodule(data_root))
    return json.loads((root / "report.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("preset", list(PRESET_SETTINGS))
def test_two_process_ddp_equals_one_process_under_every_preset(tmp_path, tiny_synthetic_root, preset):
    """The real clips of every preset are planned the same on each rank and sharded without duplicates;
    5 generated videos over 2 ranks (a padded duplicate dropped): the metrics match one process."""
    single = evaluate_preset(tmp_path / "single", tiny_synthetic_root, preset)
    ddp = evaluate_preset(tmp_path / "ddp", tiny_synthetic_root, preset, strategy="ddp_spawn", devices=2)
    assert ddp["world_size"] == 2 and ddp["protocol"]["preset"] == single["protocol"]["preset"] == preset
    assert ddp["num_generated_videos"] == single["num_generated_videos"] == 5
    expected_real = PRESET_SETTINGS[preset].get("num_real_clips", 2)  # s2dm: the 2 test clips
    assert ddp["num_real_videos"] == single["num_real_videos"] == expected_real
    for name in ("fvd_custom", "kvd_custom"):
        assert ddp["metrics"][name] == pytest.approx(single["metrics"][name], rel=METRIC_REL_TOL)
