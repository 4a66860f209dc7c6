"""s2dm_lightning/pipelines/sample_command.py and two_stage_module.py: bad numbers stop before any model loads."""

from __future__ import annotations

import pytest

from s2dm_lightning.pipelines.sample_command import sample
from s2dm_lightning.pipelines.two_stage_module import TwoStageS2DM

PATHS = {"s2dm_config": "missing.yaml", "s2dm_ckpt": "missing.ckpt", "flow_config": "f.yaml", "flow_ckpt": "f.ckpt"}


@pytest.mark.parametrize("argument,value,message", [
    ("num_inference_steps", 0, "--num_inference_steps must be >= 1, got 0"),
    ("num_frames", 1, "--num_frames must be >= 2, got 1"),
    ("fps", 0, "--fps must be >= 1, got 0"),
])
def test_sample_arguments_are_named(tmp_path, argument, value, message):
    with pytest.raises(ValueError, match=message):
        sample(prompt="a red square moves up", output_dir=str(tmp_path / "out"), **PATHS, **{argument: value})
    assert not (tmp_path / "out").exists()


def test_two_stage_arguments_are_named():
    with pytest.raises(ValueError, match="model.init_args.num_inference_steps must be >= 1, got 0"):
        TwoStageS2DM(num_inference_steps=0)
    with pytest.raises(ValueError, match="model.init_args.flow_source must be one of 'generated', 'real'; got 'fake'"):
        TwoStageS2DM(flow_source="fake")
