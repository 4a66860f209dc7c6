"""s2dm_lightning/run_lock.py: two processes on one run folder or one flow cache, started at once (the real
command line, several rounds), and the lock itself against a holder in another process."""

from __future__ import annotations

import contextlib
import queue
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from s2dm_lightning.config import load_datamodule
from tests.test_resume import ENV, REPO, _fit_args, _state, tiny_config


@contextlib.contextmanager
def held_in_another_process(folder, what: str, seconds: float | None) -> Iterator[subprocess.Popen]:
    """A process that holds ``folder``'s lock (yielded once it holds it) for ``seconds``, or with None until
    a line is written to its stdin (or the block ends), then ends."""
    release = f"time.sleep({seconds})" if seconds is not None else "sys.stdin.readline()"
    script = (f"from s2dm_lightning.run_lock import folder_lock\nimport sys, time\n"
              f"with folder_lock({str(folder)!r}, {what!r}, wait=False):\n"
              f"    print('held', flush=True); {release}\n")
    holder = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                              stdin=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


def test_a_held_folder_names_its_holder_and_a_waiter_gets_it_when_the_holder_ends(tmp_path):
    from s2dm_lightning.run_lock import FolderInUse, folder_lock

    with held_in_another_process(tmp_path, "run folder", 3) as holder:
        with pytest.raises(FolderInUse, match=f"run folder {tmp_path} is in use by pid {holder.pid} on "):
            with folder_lock(tmp_path, "run folder", wait=False):
                pass
        started = time.monotonic()
        with folder_lock(tmp_path, "run folder", wait=True):
            waited = time.monotonic() - started
    assert waited > 1.5, "the lock was taken while the holder still held it (it sleeps 3 s)"


def _config(tmp_path):
    path = tiny_config(tmp_path)
    config = yaml.safe_load(path.read_text())
    config["trainer"]["max_steps"] = 4
    next(c for c in config["trainer"]["callbacks"] if c["class_path"].endswith("StepPacer"))["init_args"] = {
        "pause": 0.0}
    path.write_text(yaml.safe_dump(config))
    return path


def _together(*commands: list[str]) -> list[subprocess.CompletedProcess]:
    running = [subprocess.Popen(c, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for c in commands]
    done = []
    for process, command in zip(running, commands, strict=True):
        out, err = process.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(command, process.returncode, out, err))
    return done


ROUNDS = 3


@pytest.mark.slow
def test_two_fits_started_at_once_take_their_own_run_folders_and_a_resume_of_a_run_in_use_refuses(tmp_path):
    for round_ in range(ROUNDS):
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        config = _config(folder)
        first, second = _together(_fit_args(config), _fit_args(config))
        assert first.returncode == second.returncode == 0, (first.stderr[-2000:], second.stderr[-2000:])
        experiment = folder / "logs/synthetic"
        versions = sorted(p.name for p in experiment.iterdir() if p.is_dir())
        assert versions == ["version_0", "version_1"], versions
        for version in versions:
            run = experiment / version
            assert len(list(run.glob("events.out.tfevents.*"))) == 1, f"two writers in {run}"
            assert _state(run / "checkpoints" / "last.ckpt")["global_step"] == 4

        # A resume of a run in use refuses, naming the holder. The holder is a process that holds the run
        # folders' locks, as a running resume does: two resumes raced from here did not always overlap on a
        # busy machine (the first had finished before the second started), so they tested nothing.
        resume = _fit_args(config, "--ckpt_path", "last", "--trainer.max_steps=6")
        with held_in_another_process(experiment / versions[0], "run folder", None) as holder_0, \
                held_in_another_process(experiment / versions[1], "run folder", None) as holder_1:
            (refused,) = _together(resume)
        assert refused.returncode == 1, refused.stderr[-2000:]
        last_line = refused.stderr.strip().splitlines()[-1]
        assert last_line.startswith("error: FolderInUse: run folder ") and " is in use by pid " in last_line
        assert any(f"pid {h.pid} " in last_line for h in (holder_0, holder_1)), last_line
        assert all(_state(experiment / v / "checkpoints" / "last.ckpt")["global_step"] == 4 for v in versions)
        (ran,) = _together(resume)
        assert ran.returncode == 0, ran.stderr[-2000:]
        newest = max((experiment / v / "checkpoints" / "last.ckpt" for v in versions),
                     key=lambda p: _state(p)["global_step"])
        assert _state(newest)["global_step"] == 6
    print(f"{ROUNDS} rounds: 2 fits at once -> 2 run folders; a resume of a run in use refused, then ran")


@pytest.mark.slow
def test_two_preprocess_on_one_cache_compute_each_video_once(tmp_path):
    # Both also generate the synthetic world (data.root is new): the second waits for the world's lock too, and keeps
    # the first's files (before that lock it rewrote them, new mtimes, and the flows made from the first went stale).
    _two_preprocess_at_once(tmp_path, _config, "flow", 8)
    # Whether the second waited or came after depends on timing (8 tiny flows take 0.1 s); the waiter's message
    # is asserted by test_a_held_folder_names_its_holder_and_a_waiter_gets_it_when_the_holder_ends.


@pytest.mark.slow
def test_two_latent_preprocess_on_one_latent_cache_encode_each_video_once(tmp_path, tiny_sd, synthetic_root):
    from tests.latent_fixtures import latent_config

    _two_preprocess_at_once(tmp_path, lambda folder: latent_config(folder, tiny_sd, synthetic_root), "latent", 5)


def _two_preprocess_at_once(tmp_path, make_config, kind: str, videos: int) -> None:
    """ROUNDS rounds of two ``preprocess`` of one config started together: each video computed once."""
    for round_ in range(ROUNDS):
        (tmp_path / f"round{round_}").mkdir()
        config = make_config(tmp_path / f"round{round_}")
        args = [sys.executable, "-m", "s2dm_lightning", "preprocess", "--config", str(config)]
        first, second = _together(args, args)
        assert first.returncode == second.returncode == 0, (first.stderr[-2000:], second.stderr[-2000:])
        summaries = sorted(line for r in (first, second) for line in r.stdout.splitlines()
                           if line.startswith(f"{kind} preprocessing:"))
        assert summaries == [f"{kind} preprocessing: 0 computed, {videos} already cached, 0 failed",
                             f"{kind} preprocessing: {videos} computed, 0 already cached, 0 failed"], summaries


@pytest.mark.slow
def test_a_predict_run_waits_for_a_preprocess_that_holds_the_flow_cache(tmp_path):
    """Lightning runs the data module's ``prepare_data`` for every stage (``Trainer._run``: fit, validate, test,
    predict), and it takes the flow cache's lock: a run reads the cache only once the process writing it has
    ended. ``predict`` stands for them here: ``test`` needs I3D weights and clips of >= 9 frames of 193 px."""
    from tests.test_resume import _lines

    config = _config(tmp_path)
    datamodule = load_datamodule(config)
    datamodule.generate()
    args = [sys.executable, "-m", "s2dm_lightning", "predict", "--config", str(config),
            "--trainer.limit_predict_batches=1"]
    with held_in_another_process(datamodule.cache_dir, "flow cache", None) as holder:
        output = (tmp_path / "predict.out").open("w")
        run = subprocess.Popen(args, cwd=REPO, env=ENV, stdout=output, stderr=subprocess.PIPE, text=True)
        errors, deadline, waiting = _lines(run.stderr), time.monotonic() + 300, None
        while waiting is None and time.monotonic() < deadline and run.poll() is None:
            with contextlib.suppress(queue.Empty):
                line = errors.get(timeout=0.1)
                waiting = line if line.startswith("waiting for ") else None
        assert waiting is not None, "predict did not wait for the cache's holder"
        time.sleep(2)  # it keeps waiting: nothing read or computed while the holder holds the cache
        assert run.poll() is None and not list(Path(datamodule.cache_dir).glob("*.pt"))
        holder.stdin.write("release\n")
        holder.stdin.flush()
        run.wait(timeout=600)  # its stderr is read to the end by the _lines thread
        output.close()
    assert run.returncode == 0
    out = (tmp_path / "predict.out").read_text()
    assert waiting.startswith(f"waiting for pid {holder.pid} on ") and waiting.endswith(
        f"which uses flow cache {datamodule.cache_dir}")
    assert "flow preprocessing: 8 computed, 0 already cached, 0 failed" in out
