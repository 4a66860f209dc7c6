"""Bad footage named: a constant first frame, a clip shorter than num_frames, a header that states more frames
than decode, an unreadable frame in the middle; in preprocess (nothing half-written) and ``--motion_from``."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2dm_lightning.data.datasets import VideoRecord
from s2dm_lightning.data.flow import FlowSettings
from s2dm_lightning.data.flow_cache import FlowCache
from s2dm_lightning.data.preprocess import preprocess_flows
from s2dm_lightning.pipelines.motion import flows_from_video
from tests.bad_input.cli import run_cli, tiny_config
from tests.data.conftest import moving_texture_video, write_avi


def black_start(path: Path) -> Path:
    frames = moving_texture_video(num_frames=8, size=32)
    frames[0] = 0
    return write_avi(path, frames)


def truncated(path: Path, num_frames: int = 20) -> Path:
    """An MJPG AVI cut at 60% of its bytes: its header still states ``num_frames`` frames, about half decode."""
    full = write_avi(path.with_name("full_" + path.name), moving_texture_video(num_frames=num_frames, size=32))
    data = full.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    return path


def damaged_middle(path: Path) -> Path:
    """An MJPG AVI whose frame 10 of 20 has 1000 bytes of its entropy-coded data zeroed."""
    data = bytearray(write_avi(path, moving_texture_video(num_frames=20, size=32)).read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    data[starts[10] + 200: starts[10] + 1200] = bytes(1000)
    path.write_bytes(bytes(data))
    return path


def _preprocess(tmp_path, **videos: Path):
    records = [VideoRecord(name, path, "a video", "train") for name, path in videos.items()]
    cache = FlowCache(tmp_path / "cache", FlowSettings(flow_size=8))
    return preprocess_flows(records, cache, progress=False, num_frames=16), cache


def test_a_constant_first_frame_fails_the_video_in_preprocess_and_is_refused_by_motion_from(tmp_path):
    path = black_start(tmp_path / "black.avi")
    summary, cache = _preprocess(tmp_path, black=path)
    assert summary.done == 0 and not cache.has("black")
    assert "FAILED black" in str(summary) and f"'{path}': its first frame is constant" in str(summary)
    with pytest.raises(ValueError, match=r"--motion_from: '.*black.avi': its first frame is constant.*would not move"):
        flows_from_video(path, 8, 4)


def test_a_video_shorter_than_num_frames_is_named(tmp_path):
    path = write_avi(tmp_path / "short.avi", moving_texture_video(num_frames=3, size=32))
    with pytest.warns(UserWarning, match=r"'.*short.avi' has 3 frames, fewer than --num_frames=4: its clips repeat"):
        flows, _ = flows_from_video(path, 8, 4)
    assert flows.shape[0] == 4
    summary, cache = _preprocess(tmp_path, short=path)
    assert cache.has("short") and "WARNING short: " in str(summary)
    assert "fewer than data.init_args.num_frames=16" in str(summary)


def test_a_header_that_states_more_frames_than_decode_is_named(tmp_path):
    path = truncated(tmp_path / "cut.avi")
    with pytest.warns(UserWarning, match=r"'.*cut.avi': its header states 20 frames but \d+ decode"):
        flows_from_video(path, 8, 4)
    summary, cache = _preprocess(tmp_path, cut=path)
    assert cache.has("cut") and "its header states 20 frames" in str(summary)


def test_an_unreadable_frame_in_the_middle_fails_the_video_naming_the_frame(tmp_path):
    path = damaged_middle(tmp_path / "damaged.avi")
    summary, cache = _preprocess(tmp_path, damaged=path)
    assert not cache.has("damaged") and not list((tmp_path / "cache").glob("*.pt"))
    assert f"FAILED damaged: VideoReadError: cannot read video '{path}': frame 10 does not decode" in str(summary)


@pytest.mark.slow
def test_preprocess_cli_names_bad_footage_last_and_caches_the_rest(tmp_path):
    root = tmp_path / "own"
    root.mkdir()
    black_start(root / "black.avi")
    truncated(root / "cut.avi")
    write_avi(root / "good.avi", moving_texture_video(num_frames=8, size=32))
    (root / "metadata.csv").write_text("path,caption,split\nblack.avi,a,train\ncut.avi,b,train\ngood.avi,c,train\n")
    config = tiny_config(tmp_path, data={"root": str(root)}, data_class="s2dm_lightning.data.VideoFolderDataModule")
    result = run_cli("preprocess", "--config", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert "2 computed, 0 already cached, 1 failed" in result.stdout
    assert lines[-1].startswith(f"  FAILED black: '{root / 'black.avi'}': its first frame is constant"), lines[-3:]
    assert any(line.startswith("  WARNING cut: ") and "header states 20 frames" in line for line in lines)
    assert sorted(p.name for p in (root / "flow_cache_16").glob("*.pt")) == ["cut.pt", "good.pt"]
