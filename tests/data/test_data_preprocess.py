from __future__ import annotations

import torch

from s2dm_lightning.data.datasets import VideoRecord
from s2dm_lightning.data.flow import FlowSettings
from s2dm_lightning.data.flow_cache import FlowCache
from s2dm_lightning.data.preprocess import preprocess_flows
from s2dm_lightning.flow_format import identity_condition
from tests.data.conftest import moving_texture_video, write_avi, write_frames


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
