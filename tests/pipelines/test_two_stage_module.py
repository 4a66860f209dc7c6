"""s2dm_lightning/pipelines/two_stage_module.py: bad numbers stop before any model loads."""

from __future__ import annotations

import pytest

from s2dm_lightning.pipelines.two_stage_module import TwoStageS2DM


def test_two_stage_arguments_are_named():
    with pytest.raises(ValueError, match="model.init_args.num_inference_steps must be >= 1, got 0"):
        TwoStageS2DM(num_inference_steps=0)
    with pytest.raises(ValueError, match="model.init_args.flow_source must be one of 'generated', 'real'; got 'fake'"):
        TwoStageS2DM(flow_source="fake")
