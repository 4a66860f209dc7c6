"""benchmarks/real_size.py on a scaled-down copy of SD 1.5's architecture: the same code as the full-size run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("real_size", REPO / "benchmarks" / "real_size.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_real_size_path_at_scale_8(tmp_path):
    real_size = _load_benchmark()
    results = real_size.main(["--scale", "8", "--stage", "all", "--steps", "2", "--work", str(tmp_path)])
    sizes = results["bytes"]
    n = sizes["unet_parameters"]
    assert sizes["weights_fp32"] == sizes["gradients_fp32"] == 4 * n
    assert sizes["adamw_state"] >= 8 * n  # exp_avg + exp_avg_sq in fp32 (+ a step scalar each)
    assert sizes["adafactor_state"] < sizes["adamw_state"] / 2  # factored second moment, no first moment
    assert 0 < sizes["lora16_parameters"] * 4 == sizes["lora64_parameters"] < n
    assert sizes["activations_checkpointing"] < sizes["activations_no_checkpointing"]
    # the token vocabulary is CLIP's, whatever the scale
    assert results["parameters"]["text_encoder"] > real_size.CLIP_VOCAB * 768
    cli = results["cli"]
    assert cli["step_s"] > 0 and cli["predict_video_s"] > 0 and cli["pipeline_video_s"] > 0
    assert (tmp_path / "checkpoints" / "last.ckpt").exists() and (tmp_path / "export").is_dir()
    assert list((tmp_path / "predict").glob("*.mp4"))
