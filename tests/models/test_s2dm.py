"""s2dm_lightning/models/s2dm.py: its numbers and choices are named by their config keys when it is built."""

from __future__ import annotations

import pytest

from tests.pipelines.conftest import tiny_s2dm


@pytest.mark.parametrize("argument,value,message", [
    ("text_dropout", 2.0, r"model.init_args.text_dropout must be >= 0.0 and <= 1.0, got 2.0"),
    ("flow_guidance_scale", -1.0, "model.init_args.flow_guidance_scale must be >= 0, got -1.0"),
    ("frames_per_step", 0, "model.init_args.frames_per_step must be >= 1, got 0"),
    ("noise_sharing", "per-frame", "model.init_args.noise_sharing must be one of 'shared', 'independent'"),
    ("sample_size", 9, r"model.init_args.sample_size=9 must be a multiple of 2 \(the UNet's 2 down blocks"),
    ("flow_patch_size", 3, r"model.init_args.flow_size=8 must be a multiple of 3 \(model.init_args.flow_patch_size=3"),
    ("warmup_steps", -1, "model.init_args.warmup_steps must be >= 0, got -1"),
])
def test_bad_arguments_are_named(argument, value, message):
    with pytest.raises(ValueError, match=message):
        tiny_s2dm(**{argument: value})
