"""SLURM auto-requeue through the real CLI: Lightning's SIGUSR1 handler writes ``hpc_ckpt_N.ckpt`` and calls
``scontrol requeue``; the requeued job re-runs the same ``fit --ckpt_path last`` command and resumes from it
(s2dm_lightning/resume.py counts the experiment's hpc checkpoints). SLURM is simulated by its variables
(what ``SLURMEnvironment.detect()`` reads) and a fake ``scontrol`` on PATH."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.test_resume import (
    ENV,
    EVERY,
    MAX_STEPS,
    REPO,
    _assert_tensorboard_run_is_continuous,
    _fit_args,
    _lines,
    _state,
    tiny_config,
)

JOB_ID = "4242"
SIGNALLED_AT = EVERY + 2  # between two interval checkpoints: only the hpc checkpoint holds this step


def slurm_env(tmp_path: Path, end_with: str = "KILL") -> dict[str, str]:
    """One task of a batch job: SLURM_NTASKS makes ``SLURMEnvironment.detect()`` true (a job name other than
    bash/interactive), auto_requeue is Lightning's default, and ``scontrol`` is the fake below.

    The fake records its arguments, then sends ``end_with`` to its caller, the training process, as SLURM ends a
    requeued job: SIGTERM (then the run writes last.ckpt at the step boundary, CheckpointAtEnd) or SIGKILL (SLURM's
    KillWait ran out: no time for that checkpoint, the worst case: only the hpc file is new)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.log"}\nkill -{end_with} $PPID\n')
    scontrol.chmod(0o755)
    slurm = {"SLURM_JOB_ID": JOB_ID, "SLURM_NTASKS": "1", "SLURM_NODELIST": "localhost",
             "SLURM_JOB_NAME": "s2dm-requeue-test", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0"}
    return {**ENV, **slurm, "PATH": f"{bin_dir}{os.pathsep}{ENV.get('PATH', '')}"}


@pytest.mark.slow
@pytest.mark.parametrize("end_with", ["KILL", "TERM"])
def test_requeue_signal_writes_hpc_checkpoint_requeues_and_the_same_command_resumes_from_it(tmp_path, end_with):
    config = tiny_config(tmp_path)
    settings = yaml.safe_load(config.read_text())
    pacer = next(c for c in settings["trainer"]["callbacks"] if c["class_path"].endswith("StepPacer"))
    pacer["init_args"] = {"pause": 1.0}  # time for the signal to land in the step it was sent after, on a busy machine
    config.write_text(yaml.safe_dump(settings))
    env = slurm_env(tmp_path, end_with)
    command = _fit_args(config, "--ckpt_path", "last")  # what the sbatch script runs, first time and requeued
    first = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines, deadline = _lines(first.stdout), time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.05)
        except queue.Empty:
            continue
        if line == f"step {SIGNALLED_AT}":  # StepPacer sleeps after printing it: the signal lands in this step
            first.send_signal(signal.SIGUSR1)  # what `#SBATCH --signal=SIGUSR1@90` sends before the time limit
            break
    else:
        raise AssertionError(f"the run never reached step {SIGNALLED_AT}")
    status = first.wait(timeout=120)
    # SIGTERM: Lightning stops at the step boundary, CheckpointAtEnd writes last.ckpt and exits 128 + 15
    assert status == (-signal.SIGKILL if end_with == "KILL" else 128 + signal.SIGTERM), status

    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", JOB_ID]
    hpc = tmp_path / "logs" / "hpc_ckpt_1.ckpt"  # Lightning writes it into default_root_dir
    signalled = _state(hpc)["global_step"]  # SIGNALLED_AT unless the signal was late: still before the next checkpoint
    assert SIGNALLED_AT <= signalled < 2 * EVERY
    run = tmp_path / "logs/synthetic/version_0"
    newest_in_run = max(_state(p)["global_step"] for p in (run / "checkpoints").glob("*.ckpt"))
    if end_with == "KILL":
        assert newest_in_run == EVERY, "the interval checkpoints hold an older step: resuming from them loses steps"
    else:
        assert newest_in_run == signalled, "SIGTERM's last.ckpt at the same step, written after the hpc file"
    resumed_from = hpc if end_with == "KILL" else run / "checkpoints/last.ckpt"

    resumed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {resumed_from} (global_step {signalled})" in resumed.stderr, resumed.stderr[-3000:]
    start = next(line for line in resumed.stdout.splitlines() if line.startswith("start ")).split()
    start_step, start_ema = int(start[1]), int(start[3])
    assert start_step == signalled, "no step lost"
    assert start_ema == int(_state(hpc)["averaging_state"]["n_averaged"]), "the EMA came back from the checkpoint"

    assert sorted(p.name for p in run.parent.iterdir() if p.is_dir()) == ["version_0"], "one run folder"
    final = _state(run / "checkpoints/last.ckpt")
    assert final["global_step"] == MAX_STEPS
    assert final["lr_schedulers"][0]["last_epoch"] == MAX_STEPS, "the LR schedule continued"
    assert {int(s["step"]) for s in final["optimizer_states"][0]["state"].values()} == {MAX_STEPS}, "Adam continued"
    assert int(final["averaging_state"]["n_averaged"]) == start_ema + MAX_STEPS - start_step, "the EMA continued"
    _assert_tensorboard_run_is_continuous(run, start_step)
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", JOB_ID], "no second requeue"


def test_the_documented_sbatch_script_requeues_and_reruns_the_tested_command():
    """docs/train_slurm.sbatch is what the test above simulates: the requeue signal, the requeue flag, and an
    srun of `fit ... --ckpt_path last` (the command that resumes from the hpc checkpoint)."""
    script = (REPO / "docs" / "train_slurm.sbatch").read_text()
    directives = {line.split()[1] for line in script.splitlines() if line.startswith("#SBATCH")}
    assert {"--signal=SIGUSR1@90", "--requeue"} <= directives
    command = script[script.index("\nsrun "):].replace("\\\n", " ").split()
    assert command[:5] == ["srun", "python", "-m", "s2dm_lightning", "fit"]
    assert command[command.index("--ckpt_path") + 1] == "last"
    ntasks = next(d.split("=")[1] for d in directives if d.startswith("--ntasks-per-node="))
    assert f"--trainer.devices={ntasks}" in command, "Lightning refuses devices != ntasks-per-node under SLURM"
