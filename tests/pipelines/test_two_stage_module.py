"""s2dm_lightning/pipelines/two_stage_module.py: bad numbers stop before any model loads; the module's own
DDIM steps reach both models per call, without changing them."""

from __future__ import annotations

import pytest

from s2dm_lightning.pipelines import TwoStageS2DM, TwoStageTextToVideo
from tests.conftest import UNetInputs, fake_batch
from tests.pipelines.conftest import SIZE, tiny_flow_generator, tiny_s2dm


def test_two_stage_arguments_are_named():
    with pytest.raises(ValueError, match="model.init_args.num_inference_steps must be >= 1, got 0"):
        TwoStageS2DM(num_inference_steps=0)
    with pytest.raises(ValueError, match="model.init_args.flow_source must be one of 'generated', 'real'; got 'fake'"):
        TwoStageS2DM(flow_source="fake")


def test_num_inference_steps_applies_to_both_models_without_changing_them():
    pipeline = TwoStageTextToVideo(tiny_s2dm(num_inference_steps=2), tiny_flow_generator(num_inference_steps=2))
    module = TwoStageS2DM.from_pipeline(pipeline, num_inference_steps=3)
    s2dm_calls, flow_calls = UNetInputs(pipeline.s2dm.unet), UNetInputs(pipeline.flow_generator.unet)
    module.test_step(fake_batch(num_videos=1, num_frames=3, size=SIZE, flow_size=SIZE), 0)
    assert len(flow_calls.calls) == 3 and len(s2dm_calls.calls) == 2 * 3  # S2DM: reference frame + video
    for model in (pipeline.s2dm, pipeline.flow_generator):
        assert model.hparams.num_inference_steps == 2 and model.sampling.num_inference_steps == 2
    pipeline(["a prompt"], num_frames=3)
    assert len(flow_calls.calls) == 3 + 2, "the pipeline alone samples with each model's own steps"
