"""``preprocess`` through the real command line: only the data module is built, and it prints no warnings."""

from __future__ import annotations

from tests.bad_input.cli import run_cli, tiny_config


def test_preprocess_builds_no_network_and_prints_no_warning(tmp_path):
    config = tiny_config(tmp_path)
    # Sentinels: a text encoder folder that does not exist and a UNet whose GroupNorm cannot be built (8 channels
    # in 5 groups) both fail at construction, so preprocess succeeds only if it builds neither.
    result = run_cli("preprocess", "--config", str(config),
                     f"--model.init_args.text_encoder.init_args.model_dir={tmp_path / 'no_such_encoder'}",
                     "--model.init_args.unet.init_args.norm_num_groups=5")
    assert result.returncode == 0, result.stderr[-3000:]
    assert list((tmp_path / "synthetic").rglob("*")), "the data module's preprocess wrote its cache"
    noise = [line for line in result.stderr.splitlines() if "Warning" in line or "Tip" in line]
    assert noise == [], result.stderr[-3000:]
