"""s2dm_lightning/demo/limits.py: a crafted upload (small file, large decoded video; a header that understates
it; a file over the size limit) gets a clear message from the page's handler, before its frames are read;
and what ``--host`` exposes is said at start. The same messages in the real page: tests/demo/test_app.py."""

from __future__ import annotations

import types

import numpy as np
import pytest

from s2dm_lightning.commands.demo import exposure_notice
from s2dm_lightning.demo import generate, limits
from s2dm_lightning.demo.generate import PageRequest, page_generate
from s2dm_lightning.demo.limits import DemoLimits, header_size
from s2dm_lightning.video_files import write_mp4

MODEL = types.SimpleNamespace(pipe=types.SimpleNamespace(flow_size=8, frame_geometry="crop"))


def _upload(path) -> PageRequest:
    return PageRequest("upload a video", None, str(path), None, "a red square", 1.0, 2, 0, 4)


@pytest.fixture
def bomb(tmp_path):
    """60 flat 512 x 512 frames: ~16 megapixels decoded from a file of a few KB."""
    return write_mp4(tmp_path / "bomb.mp4", np.full((60, 512, 512, 3), 90, np.uint8))


@pytest.fixture
def no_frame_reading(monkeypatch):
    """Fails the test if the handler reaches the frames (the check must come first)."""
    def refuse(*args, **kwargs):
        raise AssertionError("the video's frames were read")

    monkeypatch.setattr(generate, "motion_from_video", refuse)


def test_a_small_file_that_decodes_to_a_large_video_is_refused_from_its_header(bomb, tmp_path, no_frame_reading):
    assert bomb.stat().st_size < 40_000 and header_size(bomb) == (60, 512, 512)
    video, status, command = page_generate(MODEL, {}, tmp_path / "out", _upload(bomb),
                                           DemoLimits(max_decoded_megapixels=10))
    assert video is None and command == ""
    assert status.startswith("**Error:** 'bomb.mp4' is 16 megapixels by its header (60 frames of 512 x 512)")
    assert "decodes up to 10 megapixels" in status and "--max_decoded_megapixels" in status


def test_a_header_that_understates_the_video_is_caught_while_decoding(bomb, tmp_path, monkeypatch, no_frame_reading):
    monkeypatch.setattr(limits, "header_size", lambda path: (2, 16, 16))  # a lying container header
    _, status, _ = page_generate(MODEL, {}, tmp_path / "out", _upload(bomb), DemoLimits(max_decoded_megapixels=10))
    # 10e6 / (512 * 512) = 38.1: the walk stops at the 39th decoded frame, not at the 60th
    assert status.startswith("**Error:** 'bomb.mp4' decodes past 10 megapixels at frame 39, more than its header "
                             "states (39 frames of 512 x 512)"), status


def test_a_video_within_the_limits_goes_on_to_its_frames(bomb, tmp_path, monkeypatch):
    read = []

    def reached(path, *args):
        read.append(path)
        raise generate.DemoInputError("stop here")

    monkeypatch.setattr(generate, "motion_from_video", reached)
    _, status, _ = page_generate(MODEL, {}, tmp_path / "out", _upload(bomb), DemoLimits(max_decoded_megapixels=16))
    assert status == "**Error:** stop here" and len(read) == 1


def test_an_upload_over_the_size_limit_is_refused_naming_its_size(bomb, tmp_path, no_frame_reading):
    size = bomb.stat().st_size
    _, status, _ = page_generate(MODEL, {}, tmp_path / "out", _upload(bomb), DemoLimits(max_upload_mb=0.001))
    assert status == (f"**Error:** 'bomb.mp4' is {size / 1e6:.2f} MB ({size:,} bytes); this demo accepts uploads "
                      "of up to 0.001 MB (demo --max_upload_mb): cut or re-encode it smaller")
    assert not (tmp_path / "out" / "uploads").exists(), "a refused upload is not kept"


def test_the_start_notice_says_what_an_open_host_exposes(tmp_path):
    bounds = DemoLimits(max_upload_mb=20, max_decoded_megapixels=300, max_queue=4)
    local = exposure_notice("127.0.0.1", False, tmp_path, bounds)
    assert local.startswith("demo: serving 127.0.0.1 only (this machine)") and "WARNING" not in local
    open_ = exposure_notice("0.0.0.0", False, tmp_path, bounds)
    assert "WARNING --host 0.0.0.0: every network interface" in open_
    assert "Anyone who can reach it can use the model" in open_ and "upload files" in open_
    assert "no login or password (Gradio share off)" in open_
    assert "uploads up to 20 MB, 300 megapixels decoded" in open_ and "4 requests may wait" in open_
    assert "public gradio.live link" in exposure_notice("127.0.0.1", True, tmp_path, bounds)
