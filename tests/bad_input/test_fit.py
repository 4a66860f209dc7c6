"""Bad input met when starting ``fit`` through the real command line: the strategy and ``--ckpt_path last``."""

from __future__ import annotations

import subprocess

import torch

from tests.test_resume import ENV, REPO, _fit_args, tiny_config


def _last_stderr_line(result: subprocess.CompletedProcess) -> str:
    return result.stderr.strip().splitlines()[-1]


def test_ddp_spawn_strategy(tmp_path):
    result = subprocess.run(
        _fit_args(tiny_config(tmp_path), "--trainer.strategy=ddp_spawn", "--trainer.accelerator=cpu",
                  "--trainer.devices=2"), cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    last = _last_stderr_line(result)
    assert result.returncode != 0
    assert "ddp_spawn" in last and "EMAWeightAveraging" in last and "--trainer.strategy=ddp " in last, last
    assert not (tmp_path / "logs" / "synthetic").exists(), "stopped before any run folder was made"


def test_resume_last_with_checkpoints_elsewhere(tmp_path):
    # A checkpoint where a run of this config without its logger wrote it (<default_root_dir>/checkpoints),
    # and none in the experiment's own folders.
    elsewhere = tmp_path / "logs" / "checkpoints" / "epoch=0-step=4.ckpt"
    elsewhere.parent.mkdir(parents=True)
    torch.save({"global_step": 4, "state_dict": {}}, elsewhere)
    result = subprocess.run(_fit_args(tiny_config(tmp_path), "--ckpt_path", "last"), cwd=REPO, env=ENV,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    tail = result.stderr.strip().splitlines()[-3:]
    assert str(elsewhere) in tail[1] and "--ckpt_path PATH" in tail[2], "\n".join(tail)
