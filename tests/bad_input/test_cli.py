"""Bad input met through the command line: each error is the LAST thing on stderr and names the key or file.

Every test runs the real ``python -m s2dm_lightning`` in a subprocess (except where said), because what
the user sees is what the whole stack (LightningCLI, jsonargparse, our classes) leaves on the screen.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from s2dm_lightning.synthetic.world import generate_synthetic_dataset
from tests.commands.test_cli import REPO, tiny_run_args
from tests.tiny_sd import make_tiny_sd_folder

SYNTHETIC = REPO / "configs" / "synthetic.yaml"
MUG = REPO / "configs" / "mug.yaml"


def run_cli(*args: str, prefix: tuple[str, ...] = (), timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("S2DM_DEBUG", None), env.pop("JSONARGPARSE_DEBUG", None), env.pop("S2DM_I3D_WEIGHTS", None)
    return subprocess.run([*prefix, sys.executable, "-m", "s2dm_lightning", *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=timeout)


def last_lines(stderr: str, n: int = 1) -> str:
    """The last ``n`` non-empty lines of ``stderr`` (what the user reads after the command stops)."""
    return "\n".join([line for line in stderr.splitlines() if line.strip()][-n:])


def assert_stops_with(result: subprocess.CompletedProcess, *needles: str, lines: int = 1) -> str:
    tail = last_lines(result.stderr, lines)
    assert result.returncode != 0, result.stderr[-2000:]
    for needle in needles:
        assert needle in tail, f"{needle!r} not in the last {lines} line(s) of stderr:\n{result.stderr[-3000:]}"
    assert "Union subtypes" not in tail and "Namespace(" not in tail
    return tail


# -- config keys and values ----------------------------------------------------------------------------


@pytest.mark.slow
def test_unknown_config_key(tmp_path):
    extra = tmp_path / "typo.yaml"
    extra.write_text("learning_rat: 0.1\n")
    result = run_cli("fit", "--config", str(SYNTHETIC), "--config", str(extra), "--trainer.logger=false")
    assert_stops_with(result, "learning_rat")


@pytest.mark.slow
def test_text_dropout_out_of_range(tmp_path):
    # model is a Union-typed key (any LightningModule by class_path): jsonargparse wraps the model's
    # ValueError in "Does not validate against any of the Union subtypes" + a Namespace dump.
    result = run_cli("fit", *tiny_run_args(tmp_path), "--model.init_args.text_dropout=1.5")
    assert result.returncode == 2
    assert_stops_with(result, "model.init_args.text_dropout", "1.5")
    assert "Namespace(" not in result.stderr, "the config dump is not shown"


# -- data --------------------------------------------------------------------------------------------


def _read_only_prefix(folder: Path) -> tuple[str, ...]:
    """A command prefix under which ``folder`` is read-only: root ignores permission bits, so it gets a
    read-only bind mount in a private mount namespace (``unshare``); anyone else gets chmod 0555."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return ()
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True) if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        pytest.skip("running as root without unshare: cannot make a folder read-only")
    return ("unshare", "-rm", "sh", "-c", f'mount --bind -o ro "{folder}" "{folder}" && exec "$@"', "sh")


@pytest.mark.slow
def test_read_only_data_root(tmp_path):
    root = generate_synthetic_dataset(tmp_path / "synthetic", num_videos=12, frames_per_video=16)
    prefix = _read_only_prefix(root)
    try:
        result = run_cli("fit", *tiny_run_args(tmp_path), "--trainer.max_steps=1", prefix=prefix)
    finally:
        root.chmod(0o755)
    tail = assert_stops_with(result, f"'{root / 'flow_cache_32'}'", "data.init_args.cache_dir")
    assert "OSError: [Errno" not in tail
    assert not (root / "flow_cache_32").exists()


# -- checkpoints -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_checkpoint(tmp_path_factory) -> tuple[Path, list[str]]:
    """A one-step fit of configs/synthetic.yaml (flow_fusion both, 6 input channels) and its arguments."""
    from s2dm_lightning.cli import main

    folder = tmp_path_factory.mktemp("run")
    args = tiny_run_args(folder)
    main(["fit", *args, "--trainer.max_steps=1", "--trainer.limit_val_batches=0"])
    return next((folder / "logs").rglob("last.ckpt")), args


@pytest.mark.slow
def test_checkpoint_hparams_differ_from_config(synthetic_checkpoint):
    checkpoint, args = synthetic_checkpoint
    # The config describes a tokens-only network (3 input channels); the checkpoint is flow_fusion both.
    result = run_cli("predict", *args, f"--ckpt_path={checkpoint}", "--model.init_args.flow_fusion=tokens",
                     "--model.init_args.unet.init_args.in_channels=3", "--model.init_args.guidance_scale=3.0")
    tail = assert_stops_with(result, "model.init_args.flow_fusion: checkpoint both, config tokens",
                             "model.init_args.unet.init_args.in_channels: checkpoint 6, config 3",
                             "--model.init_args.flow_fusion=both", "config.yaml", lines=4)
    assert str(checkpoint) in result.stderr and "needs in_channels" not in result.stderr
    assert "guidance_scale=3.0 from the config/command line (the checkpoint was trained with 2.0)" in result.stderr
    assert "guidance_scale" not in tail, "a sampling setting is not among the refused ones"


@pytest.mark.slow
def test_override_ignored_by_checkpoint(synthetic_checkpoint, tmp_path, capsys, monkeypatch):
    """A sampling setting given on the command line is applied (LightningCLI alone replaced it by the
    checkpoint's, silently), and a line says the checkpoint had another value. In-process to read the model."""
    from s2dm_lightning.cli import S2DMCLI

    checkpoint, args = synthetic_checkpoint
    monkeypatch.chdir(tmp_path)  # the config's prediction writer writes to outputs/ under the working directory
    cli = S2DMCLI(args=["predict", *args, f"--ckpt_path={checkpoint}", "--model.init_args.guidance_scale=3.0",
                        "--model.init_args.num_inference_steps=1", "--trainer.limit_predict_batches=1",
                        f"--trainer.default_root_dir={tmp_path}"])
    assert cli.model.hparams.guidance_scale == 3.0 and cli.model.guidance.scale == 3.0
    assert "model.init_args.guidance_scale=3.0 from the config/command line" in capsys.readouterr().err


# -- Stable Diffusion folders ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory) -> Path:
    return make_tiny_sd_folder(tmp_path_factory.mktemp("sd") / "stable-diffusion-v1-5")


def _mug_with(sd_folder: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    return run_cli("fit", "--config", str(MUG), f"--model.init_args.pretrained={sd_folder}",
                   "--model.init_args.vae_path=null", "--model.init_args.latent_cache_dir=null",
                   f"--data.init_args.root={tmp_path / 'mug'}", "--trainer.logger=false", "--trainer.devices=1",
                   "--trainer.strategy=auto", "--trainer.accelerator=cpu", "--trainer.precision=32-true",
                   f"--trainer.default_root_dir={tmp_path}")


@pytest.mark.slow
def test_incomplete_sd_folder(tiny_sd, tmp_path):
    folder = shutil.copytree(tiny_sd, tmp_path / "sd")
    for weights in (folder / "unet").glob("diffusion_pytorch_model.*"):
        weights.unlink()
    assert_stops_with(_mug_with(folder, tmp_path), f"'{folder / 'unet'}' has a config but no weights",
                      "model.pretrained")


@pytest.mark.slow
def test_sd_folder_without_vae(tiny_sd, tmp_path):
    folder = shutil.copytree(tiny_sd, tmp_path / "sd")
    shutil.rmtree(folder / "vae")
    assert_stops_with(_mug_with(folder, tmp_path), "model.pretrained", "has no 'vae/' sub-folder")


@pytest.mark.slow
def test_invalid_unet_config_json(tiny_sd, tmp_path):
    folder = shutil.copytree(tiny_sd, tmp_path / "sd")
    (folder / "unet" / "config.json").write_text("{not json")
    assert_stops_with(_mug_with(folder, tmp_path), str(folder / "unet" / "config.json"))


# -- evaluation --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_test_without_i3d_weights(tmp_path):
    result = run_cli("test", *tiny_run_args(tmp_path))
    assert_stops_with(result, "metrics.i3d_weights", lines=3)
    assert not (tmp_path / "synthetic").exists(), "nothing is prepared (let alone generated) before the check"


@pytest.mark.slow
def test_protocol_knob_fixed_by_preset(tmp_path):
    result = run_cli("test", *tiny_run_args(tmp_path), "--metrics.protocol=stylegan-v", "--metrics.frame_stride=3")
    last = assert_stops_with(result, "metrics.frame_stride=3 conflicts with metrics.protocol='stylegan-v'")
    assert "set metrics.protocol=custom" in last
    assert not (tmp_path / "synthetic").exists(), "stopped before preparing data"
