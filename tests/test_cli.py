"""The real command line: every config parses, and fit / predict run end to end on tiny data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from s2dm_lightning.cli import S2DMCLI, main
from tests.latent.tiny_sd import make_tiny_sd_folder

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


# Configs that start from pretrained weights name LOCAL folders the user provides (model.init_args.pretrained:
# a Stable Diffusion folder; vae_path: the fine-tuned VAE). The test points those keys at a tiny
# SD-1.5-shaped folder, loaded through the same code path as the real one; every other key is used as written.
PRETRAINED_KEYS = ("pretrained", "vae_path")


def pretrained_overrides(config: Path, folder: Path) -> list[str]:
    init_args = (yaml.safe_load(config.read_text()).get("model") or {}).get("init_args") or {}
    return [f"--model.init_args.{key}={folder}" for key in PRETRAINED_KEYS if init_args.get(key)]


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_every_config_parses(config, tmp_path):
    overrides = pretrained_overrides(config, tmp_path / "sd")
    if overrides:
        make_tiny_sd_folder(tmp_path / "sd")
    cli = S2DMCLI(args=["--config", str(config), "--trainer.logger=false", *overrides], run=False)
    sections = yaml.safe_load(config.read_text())
    for built, section in ((cli.model, "model"), (cli.datamodule, "data")):
        class_path = sections[section]["class_path"]
        assert class_path.rsplit(".", 1)[-1] == type(built).__name__, f"{config.name}: {section} is not {class_path}"


def test_unknown_config_key_is_named(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "configs" / "synthetic.yaml").read_text() + "\nlearning_rat: 0.1\n")
    with pytest.raises(SystemExit):
        S2DMCLI(args=["--config", str(bad)], run=False)
    assert "learning_rat" in capsys.readouterr().err


def test_unknown_model_key_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        S2DMCLI(args=["--config", str(REPO / "configs/synthetic.yaml"), "--model.init_args.noise_shareing=shared"],
                run=False)
    assert "noise_shareing" in capsys.readouterr().err


def tiny_run_args(tmp_path: Path) -> list[str]:
    """configs/synthetic.yaml on a 12-video dataset, 2 DDIM steps, everything written under tmp_path."""
    return [
        "--config", str(REPO / "configs" / "synthetic.yaml"),
        f"--data.init_args.root={tmp_path / 'synthetic'}",
        "--data.init_args.num_videos=12",
        "--data.init_args.frames_per_video=16",
        "--data.init_args.batch_size=2",
        "--data.init_args.val_videos=1",
        "--model.init_args.num_inference_steps=2",
        f"--trainer.default_root_dir={tmp_path}",
        f"--trainer.logger.init_args.save_dir={tmp_path / 'logs'}",
        "--trainer.enable_progress_bar=false",
    ]


def test_fit_two_steps_then_predict_through_the_cli(tmp_path):
    out = tmp_path / "predict"
    main(["fit", *tiny_run_args(tmp_path), "--trainer.max_steps=2", "--trainer.val_check_interval=2",
          "--trainer.check_val_every_n_epoch=null", "--trainer.limit_val_batches=1"])
    checkpoints = list((tmp_path / "logs").rglob("last.ckpt"))
    assert len(checkpoints) == 1
    event_files = list((tmp_path / "logs").rglob("events.out.tfevents.*"))
    assert event_files, "TensorBoard is the default logger"
    samples = list((tmp_path / "logs").rglob("samples/*/contact_sheet.png"))
    assert samples, "the sample callback writes videos at validation"

    main(["predict", *tiny_run_args(tmp_path), f"--ckpt_path={checkpoints[0]}", "--trainer.limit_predict_batches=1",
          "--trainer.callbacks+=s2dm_lightning.callbacks.VideoPredictionWriter",
          f"--trainer.callbacks.output_dir={out}"])
    assert list(out.glob("*.mp4")) and list(out.glob("*.gif")) and (out / "contact_sheet.png").is_file()


def test_module_entry_point_shows_help():
    result = subprocess.run([sys.executable, "-m", "s2dm_lightning", "fit", "--help"], capture_output=True,
                            text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0 and "--config" in result.stdout


def test_help_lists_every_subcommand():
    result = subprocess.run([sys.executable, "-m", "s2dm_lightning", "--help"], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")]
    assert listed == ["fit", "validate", "test", "predict", "preprocess", "sample", "export", "demo"]
    assert all(len(line.split()) > 2 for line in result.stdout.splitlines() if line.startswith("  ")), "one line each"
