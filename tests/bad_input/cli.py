"""A tiny experiment config and a runner for the real command line, shared by the bad-input tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]


def tiny_config(tmp_path: Path, model: dict[str, Any] | None = None, data: dict[str, Any] | None = None,
                data_class: str = "s2dm_lightning.synthetic.SyntheticDataModule") -> Path:
    """A 2-step pixel-space S2DM on 16-px frames (a 3-block UNet: sizes must be multiples of 4), written to tmp_path.

    ``model`` / ``data`` update the init_args; a value of None removes the key.
    """
    model_args: dict[str, Any] = {
        "unet": {"class_path": "diffusers.UNet2DConditionModel", "init_args": {
            "sample_size": 16, "in_channels": 6, "out_channels": 3, "block_out_channels": [8, 8, 8],
            "down_block_types": ["DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"],
            "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"], "layers_per_block": 1,
            "cross_attention_dim": 384, "attention_head_dim": 4, "norm_num_groups": 4}},
        "text_encoder": {"class_path": "s2dm_lightning.models.MiniLMTextEncoder", "init_args": {"max_length": 16}},
        "flow_fusion": "both", "flow_size": 16, "flow_patch_size": 8, "num_inference_steps": 2,
    }
    data_args: dict[str, Any] = {"root": str(tmp_path / "synthetic"), "num_videos": 4, "frames_per_video": 4,
                                 "image_size": 16, "resolution": 16, "flow_size": 16, "num_frames": 4,
                                 "batch_size": 2, "val_videos": 1, "dis_preset": "ultrafast"}
    if data_class != "s2dm_lightning.synthetic.SyntheticDataModule":
        for key in ("num_videos", "frames_per_video", "image_size"):
            data_args.pop(key)
    for args, changes in ((model_args, model or {}), (data_args, data or {})):
        for key, value in changes.items():
            if value is None:
                args.pop(key, None)
            else:
                args[key] = value
    config = {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "devices": 1, "max_steps": 1, "logger": False,
                    "enable_checkpointing": False, "enable_progress_bar": False, "limit_val_batches": 0,
                    "num_sanity_val_steps": 0, "default_root_dir": str(tmp_path / "logs")},
        "model": {"class_path": "s2dm_lightning.models.S2DM", "init_args": model_args},
        "data": {"class_path": data_class, "init_args": data_args},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m s2dm_lightning <args>`` with this checkout first on the path; output captured as text."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "s2dm_lightning", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, env=env, timeout=timeout)


def last_line(text: str) -> str:
    """The last non-empty line of a process's output (where the error the user sees must be)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def assert_fails_with(result: subprocess.CompletedProcess, *fragments: str, last: bool = False) -> str:
    """The command failed and stderr (with ``last``: its last line) holds every fragment; returns the last line."""
    line = last_line(result.stderr)
    assert result.returncode != 0, f"the command succeeded:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    where = line if last else result.stderr
    missing = [f for f in fragments if f not in where]
    assert not missing, f"{missing} not in {'the last line of ' if last else ''}stderr:\n{result.stderr[-3000:]}"
    return line
