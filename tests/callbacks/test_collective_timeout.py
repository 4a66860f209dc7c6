"""CollectiveTimeout (s2dm_lightning/callbacks/collective_timeout.py): two CPU ranks (gloo, ``strategy: ddp``,
the real command line); one is killed or stopped mid-training, and the other must exit with an error within
the configured bound instead of waiting in its all-reduce for the 30-minute torch default."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from lightning.pytorch import Callback

from tests.test_resume import ENV, REPO, _fit_args, _lines, tiny_config

TIMEOUT_S = 10.0
MARGIN_S = 30.0  # process teardown and the loop's own poll, on a shared 2-core machine


class RankReporter(Callback):
    """Test-only: prints ``rank <r> pid <pid> step <n>`` after each batch, then sleeps."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        print(f"rank {trainer.global_rank} pid {os.getpid()} step {trainer.global_step}", flush=True)
        time.sleep(0.3)


def _ddp_config(tmp_path: Path) -> Path:
    path = tiny_config(tmp_path)
    config = yaml.safe_load(path.read_text())
    callbacks = [c for c in config["trainer"]["callbacks"] if not c["class_path"].endswith("StepPacer")]
    callbacks += [{"class_path": "tests.callbacks.test_collective_timeout.RankReporter"},
                  {"class_path": "s2dm_lightning.callbacks.CollectiveTimeout", "init_args": {"seconds": TIMEOUT_S}}]
    config["trainer"].update(callbacks=callbacks, strategy="ddp", devices=2, accelerator="cpu", max_steps=200)
    path.write_text(yaml.safe_dump(config))
    return path


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["rank1_hangs", "rank1_killed", "rank0_killed"])
def test_the_other_rank_exits_with_an_error_within_the_bound(tmp_path, fault):
    process = subprocess.Popen(_fit_args(_ddp_config(tmp_path)), cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines, pids, output = _lines(process.stdout), {}, []
    try:
        deadline = time.monotonic() + 300
        while len(pids) < 2 or not all(s >= 3 for s in pids.values()):
            line = lines.get(timeout=max(1.0, deadline - time.monotonic()))
            output.append(line)
            if match := re.fullmatch(r"rank (\d) pid (\d+) step (\d+)", line):
                pids[(int(match[1]), int(match[2]))] = int(match[3])
        rank_pid = {rank: pid for rank, pid in pids}
        assert rank_pid[0] == process.pid, "rank 0 is the launched command"
        victim, survivor = (rank_pid[0], rank_pid[1]) if fault == "rank0_killed" else (rank_pid[1], rank_pid[0])
        os.kill(victim, signal.SIGSTOP if fault == "rank1_hangs" else signal.SIGKILL)
        faulted = time.monotonic()
        while _alive(survivor) and time.monotonic() - faulted < TIMEOUT_S + MARGIN_S:
            time.sleep(0.2)
        took = time.monotonic() - faulted
        assert not _alive(survivor), f"the surviving rank still waits {took:.0f} s after the fault"
        print(f"{fault}: the other rank exited {took:.1f} s after the fault (bound {TIMEOUT_S:g} s + margin)")
        if survivor == process.pid:
            assert process.wait(timeout=30) != 0, "it must exit with an error"
        while True:
            try:
                output.append(lines.get(timeout=2))
            except queue.Empty:
                break
        text = "\n".join(output)
        if fault == "rank1_hangs":  # only the timeout can end this one
            assert "another DDP rank stopped answering" in text, text[-3000:]
    finally:
        for pid in [process.pid, *(p for _, p in pids)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait(timeout=30)
