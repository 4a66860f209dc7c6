"""s2dm_lightning/models/flow_generator.py: its numbers and choices are named by their config keys."""

from __future__ import annotations

import pytest

from tests.pipelines.conftest import tiny_flow_generator


@pytest.mark.parametrize("argument,value,message", [
    ("num_frames", 1, "model.init_args.num_frames must be >= 2, got 1"),
    ("reference_dropout", -0.1, r"model.init_args.reference_dropout must be >= 0.0 and <= 1.0, got -0.1"),
    ("reference_guidance_scale", -2.0, "model.init_args.reference_guidance_scale must be >= 0, got -2.0"),
    ("num_inference_steps", 0, "model.init_args.num_inference_steps must be >= 1"),
    ("eta", -1.0, "model.init_args.eta must be >= 0"),
    ("guidance_mode", "both", "model.init_args.guidance_mode must be one of 'joint', 'separate'"),
    ("learning_rate", 0.0, "model.init_args.learning_rate must be > 0"),
])
def test_bad_arguments_are_named(argument, value, message):
    with pytest.raises(ValueError, match=message):
        tiny_flow_generator(**{argument: value})


def test_unet_sample_size_must_pass_its_halvings():
    with pytest.raises(ValueError, match=r"model.init_args.unet.init_args.sample_size=9 must be a multiple of 2"):
        tiny_flow_generator(sample_size=9)
