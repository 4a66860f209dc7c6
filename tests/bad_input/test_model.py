"""Bad model settings (rows of docs/bad_input.md): each stops the run with its config key and value named.

The settings a user writes in a config are tested through the real command line; the error
raised while LightningCLI builds the model may still be followed by jsonargparse's summary
(cli.py's job to put the root cause last), so these check the message is in stderr; errors
raised after parsing (``setup``) must be the last line.
"""

from __future__ import annotations

import csv

import pytest

from s2dm_lightning.models import S2DM
from tests.bad_input.cli import assert_fails_with, run_cli, tiny_config
from tests.conftest import HashTextEncoder, tiny_unet
from tests.data.conftest import moving_texture_video, write_frames


def test_unet_channels_mismatch():
    with pytest.raises(ValueError, match=r"model.unet has in_channels=3.*needs in_channels=6"):
        S2DM(tiny_unet(in_channels=3), HashTextEncoder(), flow_fusion="both", flow_size=8)


@pytest.mark.slow
def test_guidance_scale_negative(tmp_path):
    result = run_cli("fit", "--config", str(tiny_config(tmp_path, model={"guidance_scale": -1})))
    assert_fails_with(result, "model.init_args.guidance_scale must be >= 0, got -1", "between 0 and 1 weakens it")
    assert not (tmp_path / "synthetic").exists(), "nothing is generated before the model is checked"


@pytest.mark.slow
def test_num_inference_steps_zero(tmp_path):
    result = run_cli("fit", "--config", str(tiny_config(tmp_path, model={"num_inference_steps": 0})))
    assert_fails_with(result, "model.init_args.num_inference_steps must be >= 1 and <= 1000, got 0")


@pytest.mark.slow
def test_dropout_out_of_range(tmp_path):
    result = run_cli("fit", "--config", str(tiny_config(tmp_path, model={"flow_dropout": 1.5})))
    assert_fails_with(result, "model.init_args.flow_dropout must be >= 0.0 and <= 1.0, got 1.5")


@pytest.mark.slow
def test_eta_negative(tmp_path):
    result = run_cli("fit", "--config", str(tiny_config(tmp_path, model={"eta": -0.5})))
    assert_fails_with(result, "model.init_args.eta must be >= 0, got -0.5")


@pytest.mark.slow
def test_caption_too_long(tmp_path):
    # A folder dataset whose one training caption is 500 words, far past MiniLM's 16-token window.
    root = tmp_path / "videos"
    long_caption = " ".join((["a", "red", "square", "moves", "to", "the", "left"] * 72)[:500])
    rows = []
    for index, (split, caption) in enumerate([("train", long_caption), ("test", "a blue circle moves up")]):
        write_frames(root / f"clip{index}", moving_texture_video(num_frames=4, size=16, seed=index))
        rows.append({"path": f"clip{index}", "caption": caption, "split": split})
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "caption", "split"])
        writer.writeheader()
        writer.writerows(rows)
    config = tiny_config(tmp_path, data={"root": str(root)}, data_class="s2dm_lightning.data.VideoFolderDataModule")
    result = run_cli("fit", "--config", str(config))
    assert_fails_with(result, "model.init_args.text_encoder.init_args.max_length", "window of 16",
                      "caption 'a red square moves to the left a red", "(500 words)", last=True)


@pytest.mark.slow
def test_sampler_draws_own_noise(tmp_path):
    result = run_cli("fit", "--config", str(tiny_config(tmp_path, model={"sampler": "EulerAncestralDiscreteScheduler"})))
    assert_fails_with(result, "model.init_args.sampler='EulerAncestralDiscreteScheduler': its step draws noise itself",
                      "DPMSolverMultistepScheduler")
    assert not (tmp_path / "synthetic").exists(), "nothing is generated before the model is checked"
