"""CheckpointAtEnd (s2dm_lightning/callbacks/checkpoint_at_end.py) through the real command line: a normal end
whose max_steps is not a multiple of the checkpoint interval, and SIGTERM / Ctrl-C, each resumed with
``--ckpt_path last`` to the same final step."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from tests.test_resume import ENV, EVERY, MAX_STEPS, REPO, _fit_args, _lines, _state, tiny_config

CHECKPOINTS = "logs/synthetic/version_0/checkpoints"


def _config(tmp_path: Path, pause: float) -> Path:
    path = tiny_config(tmp_path)
    config = yaml.safe_load(path.read_text())
    pacer = next(c for c in config["trainer"]["callbacks"] if c["class_path"].endswith("StepPacer"))
    pacer["init_args"] = {"pause": pause}
    path.write_text(yaml.safe_dump(config))
    return path


def _run(config: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(_fit_args(config, *extra), cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)


def _start_step(stdout: str) -> int:
    return int(next(line for line in stdout.splitlines() if line.startswith("start ")).split()[1])


def test_normal_end_off_the_interval_leaves_last_at_the_final_step_and_export_ships_it(tmp_path):
    config = _config(tmp_path, pause=0.0)
    end = 2 * EVERY + 2  # 10: the interval checkpoint is at 8
    first = _run(config, f"--trainer.max_steps={end}")
    assert first.returncode == 0, first.stderr[-3000:]
    last = _state(tmp_path / CHECKPOINTS / "last.ckpt")
    assert last["global_step"] == end, "the last two steps were thrown away"
    # Written before EMAWeightAveraging copies the average into the network: the trained weights and
    # the EMA differ (decay 0.9 over 8 updates), so a resumed run goes on from the trained ones.
    name = next(k for k in last["state_dict"] if k.endswith("weight"))
    assert not torch.allclose(last["state_dict"][name], last["current_model_state"][name])

    exported = subprocess.run([*_fit_args(config)[:3], "export", "--config", str(config), "--ckpt_path", "last",
                               "--output_dir", str(tmp_path / "export")], cwd=REPO, env=ENV, capture_output=True,
                              text=True, timeout=600)
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert "last.ckpt" in exported.stdout
    from safetensors.torch import load_file

    unet = load_file(next((tmp_path / "export" / "unet").glob("*.safetensors")))
    some_key = next(k for k in last["state_dict"] if k.startswith("unet.") and k.endswith("weight"))
    assert torch.equal(unet[some_key.removeprefix("unet.")], last["state_dict"][some_key]), \
        "export shipped the step-10 EMA weights"

    resumed = _run(config, "--ckpt_path", "last", f"--trainer.max_steps={end + 2}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _start_step(resumed.stdout) == end
    assert _state(tmp_path / CHECKPOINTS / "last.ckpt")["global_step"] == end + 2


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_writes_a_resumable_checkpoint_and_resume_reaches_the_same_final_step(tmp_path, signum):
    config = _config(tmp_path, pause=0.5)
    process = subprocess.Popen(_fit_args(config), cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    lines, signalled_at = _lines(process.stdout), None
    while signalled_at is None:
        line = lines.get(timeout=300)
        if line == f"step {EVERY + 2}":  # between two interval checkpoints (4 and 8)
            signalled_at = EVERY + 2
            process.send_signal(signum)
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 128 + signum, stderr[-3000:]
    last = tmp_path / CHECKPOINTS / "last.ckpt"
    assert f"fit stopped by {signal.Signals(signum).name} at global_step" in stderr
    assert f"checkpoint: {last}" in stderr and "--ckpt_path last" in stderr
    stopped_at = _state(last)["global_step"]
    # The signal arrives during step 6's pause; the step ends, the checkpoint holds it (or the next one,
    # if the next step had begun when the loop looked): nothing since the interval checkpoint at 4 is lost.
    assert signalled_at <= stopped_at <= signalled_at + 1, stderr[-3000:]

    resumed = _run(config, "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    start = _start_step(resumed.stdout)
    print(f"{signal.Signals(signum).name}: sent after step {signalled_at}, checkpoint at {stopped_at}, "
          f"resumed at {start}, lost {max(0, signalled_at - start)}")
    assert start == stopped_at
    final = _state(last)
    assert final["global_step"] == MAX_STEPS
    assert {int(s["step"]) for s in final["optimizer_states"][0]["state"].values()} == {MAX_STEPS}
