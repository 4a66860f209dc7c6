"""Two CPU processes (gloo, ddp_spawn) evaluate the same videos as one process, with the same result.

N = 5 over 2 ranks: Lightning's DistributedSampler pads the test set to 6 items (a duplicate of item 0
on rank 1); the callback drops the duplicate. KVD uses random subsets, so the gathered features must
also come back in dataset order for the values to match.
"""

from __future__ import annotations

import json

import pytest

from s2dm_lightning.evaluation import RandomConv3dFeatures, VideoMetricsCallback
from tests.evaluation.helpers import ClipDataModule, DDPFakeGenerator, cpu_trainer


def evaluate(root, **trainer_kwargs) -> dict:
    callback = VideoMetricsCallback(feature_extractor=RandomConv3dFeatures(feature_dim=6, width=4), num_videos=5,
                                    kvd_subsets=4, kvd_subset_size=3, report_path=str(root / "report.json"))
    trainer = cpu_trainer(root, [callback], **trainer_kwargs)
    trainer.test(DDPFakeGenerator(), datamodule=ClipDataModule(num_test=3, batch_size=2))
    return json.loads((root / "report.json").read_text())


def test_two_process_ddp_equals_one_process(tmp_path):
    single = evaluate(tmp_path / "single")
    ddp = evaluate(tmp_path / "ddp", strategy="ddp_spawn", devices=2)
    assert ddp["world_size"] == 2 and single["world_size"] == 1
    assert ddp["num_generated_videos"] == single["num_generated_videos"] == 5
    assert ddp["num_real_videos"] == single["num_real_videos"] == 3
    for name in ("fvd_custom", "kvd_custom"):
        assert ddp["metrics"][name] == pytest.approx(single["metrics"][name], rel=1e-5, abs=1e-9)
    std = "kvd_custom_std_over_subsets"
    assert ddp["runs"][0][std] == pytest.approx(single["runs"][0][std], rel=1e-5, abs=1e-9)
