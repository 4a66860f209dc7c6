from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch

from s2dm_lightning.data.datasets import VideoRecord
from s2dm_lightning.data.flow import FlowSettings
from s2dm_lightning.data.flow_cache import FlowCache
from s2dm_lightning.data.preprocess import preprocess_flows
from s2dm_lightning.flow_format import identity_condition
from tests.data.conftest import moving_texture_video, write_avi, write_frames

REPO = Path(__file__).resolve().parents[2]


def _records(tmp_path) -> list[VideoRecord]:
    good_a = write_frames(tmp_path / "a", moving_texture_video(num_frames=6, size=32, seed=1))
    good_b = write_avi(tmp_path / "b.avi", moving_texture_video(num_frames=6, size=64, seed=2))
    corrupt = tmp_path / "c.avi"
    corrupt.write_bytes(b"\x00" * 500)
    return [
        VideoRecord("a", good_a, "a video", "train"),
        VideoRecord("b", good_b, "b video", "train"),
        VideoRecord("c", corrupt, "broken", "train"),
        VideoRecord("d", tmp_path / "missing", "gone", "test"),
    ]


def test_skips_and_reports_bad_videos_then_resumes(tmp_path):
    records = _records(tmp_path)
    cache = FlowCache(tmp_path / "cache", FlowSettings(flow_size=8))
    # An interrupted first run got as far as video "a".
    first = preprocess_flows(records[:1], cache, progress=False)
    assert (first.done, first.skipped, first.failed) == (1, 0, [])
    mtime_a = cache.path_for("a").stat().st_mtime_ns

    summary = preprocess_flows(records, cache, progress=False)
    assert summary.done == 1 and summary.skipped == 1
    failed = dict(summary.failed)
    assert set(failed) == {"c", "d"}
    assert "c.avi" in failed["c"] and "missing" in failed["d"]
    assert "1 computed, 1 already cached, 2 failed" in str(summary) and "FAILED c" in str(summary)
    assert cache.path_for("a").stat().st_mtime_ns == mtime_a  # not recomputed
    flow_b = cache.load("b", expected_frames=6)
    assert torch.equal(flow_b[0], identity_condition(8, 8))

    again = preprocess_flows(records, cache, progress=False)
    assert (again.done, again.skipped, len(again.failed)) == (0, 2, 2)


def test_worker_processes(tmp_path):
    records = _records(tmp_path)
    cache = FlowCache(tmp_path / "cache", FlowSettings(flow_size=8))
    summary = preprocess_flows(records, cache, num_workers=2, progress=False)
    assert summary.done == 2 and {v for v, _ in summary.failed} == {"c", "d"}
    assert cache.load("a", expected_frames=6).shape == (6, 3, 8, 8)


def _cached(cache: Path) -> list[Path]:
    return [p for p in cache.glob("*.pt") if not p.name.startswith(".")]  # not a killed write's temp file


def _marked_processes(marker: bytes) -> dict[int, str]:
    """pid -> command line of every live process whose environment holds ``marker``."""
    found = {}
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes().split(b"\0"):
                cmdline = (environ.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found[int(environ.parent.name)] = cmdline[:160]
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="scans /proc for the processes left behind")
def test_no_process_survives_a_killed_preprocess_and_the_rerun_resumes(tmp_path):
    num_videos = 120  # 2 workers need a few seconds for them: the kill lands while they compute
    cache = tmp_path / "cache"
    command = [
        sys.executable, "-m", "s2dm_lightning", "preprocess", "--config", str(REPO / "configs" / "synthetic.yaml"),
        "--trainer.logger=false", f"--data.init_args.root={tmp_path / 'synthetic'}",
        f"--data.init_args.num_videos={num_videos}", "--data.init_args.preprocess_workers=2",
        f"--data.init_args.cache_dir={cache}",
    ]
    marker = f"S2DM_TEST_PREPROCESS_MARKER={uuid.uuid4().hex}".encode()
    env = {**os.environ, **dict([marker.decode().split("=")]), "PYTHONPATH": str(REPO)}
    main = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while len(_cached(cache)) < 3:  # workers are computing
            assert main.poll() is None, "preprocess ended before it could be killed"
            assert time.monotonic() < deadline, "preprocess wrote no flows in time"
            time.sleep(0.2)
        children = set(_marked_processes(marker)) - {main.pid}
        assert len(children) >= 3, f"expected workers, forkserver, resource tracker: {children}"
        main.kill()  # SIGKILL: no cleanup in the main process; left unreaped (a zombie) while we look
        deadline = time.monotonic() + 30
        while (survivors := _marked_processes(marker)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not survivors, f"processes outlived the killed preprocess: {survivors}"
    finally:
        main.kill()
        main.wait()
        for pid in _marked_processes(marker):  # don't leave them on the machine if the test failed
            os.kill(pid, signal.SIGKILL)

    cached = len(_cached(cache))
    assert 0 < cached < num_videos
    rerun = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    line = re.search(r"flow preprocessing: (\d+) computed, (\d+) already cached, (\d+) failed", rerun.stdout)
    assert line, rerun.stdout[-2000:]
    computed, already, failed = map(int, line.groups())
    assert (computed, already, failed) == (num_videos - cached, cached, 0)
    assert len(_cached(cache)) == num_videos and not list(cache.glob(".*")), "temporary files were cleaned up"
