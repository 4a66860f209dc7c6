"""s2dm_lightning/commands/sample.py: bad numbers stop before any model loads."""

from __future__ import annotations

import pytest

from s2dm_lightning.commands.sample import sample

PATHS = {"s2dm_config": "missing.yaml", "s2dm_ckpt": "missing.ckpt", "flow_config": "f.yaml", "flow_ckpt": "f.ckpt"}


@pytest.mark.parametrize("argument,value,message", [
    ("num_inference_steps", 0, "--num_inference_steps must be >= 1, got 0"),
    ("num_frames", 1, "--num_frames must be >= 2, got 1"),
    ("fps", 0, "--fps must be >= 1, got 0"),
    ("eta", -1.0, "--eta must be >= 0, got -1.0"),
    ("sampler", "DDPMScheduler", "--sampler='DDPMScheduler': its step draws noise itself"),
    ("sampler_options", {"solver": 2}, "--sampler_options has 'solver', which DDIMScheduler does not take"),
])
def test_sample_arguments_are_named(tmp_path, argument, value, message):
    sampler = {"sampler": "DDIMScheduler"} if argument == "sampler_options" else {}
    with pytest.raises(ValueError, match=message):
        sample(prompt="a red square moves up", output_dir=str(tmp_path / "out"), **PATHS, **sampler,
               **{argument: value})
    assert not (tmp_path / "out").exists()
