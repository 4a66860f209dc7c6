"""Bad input in the demo page, through the function its Generate button calls (tests/demo/test_app.py drives
the same through a real browser): a message in the page, no video, no exception, and the app keeps serving."""

from __future__ import annotations

import numpy as np
import pytest

from s2dm_lightning.demo.generate import MOTION_SOURCES, PageRequest, dataset_clips, load_model, page_generate
from s2dm_lightning.demo.limits import DemoLimits
from s2dm_lightning.video_files import write_mp4
from tests.demo.conftest import demo_files, tiny_checkpoints  # noqa: F401 (fixtures)


@pytest.fixture
def page(demo_files):  # noqa: F811
    """Press Generate with some fields changed: returns (video, status, command) as the page gets them."""
    model = load_model(str(demo_files["config"]), str(demo_files["ckpt"]), None)
    clips = {clip.label: clip for clip in dataset_clips(str(demo_files["config"]))[0]}

    def press(limits=DemoLimits(), **fields):  # noqa: B008 - frozen
        request = {"source": MOTION_SOURCES[0], "clip_label": next(iter(clips)), "upload": None,
                   "formula": "translate:-2,0", "caption": "a red square moves up", "guidance": 2.0, "steps": 2,
                   "seed": 0, "num_frames": 3, **fields}
        return page_generate(model, clips, demo_files["output"], PageRequest(**request), limits)

    return press


def test_demo_upload_not_a_video(page, tmp_path):
    notes = tmp_path / "notes.mp4"
    notes.write_text("these are notes, not a video\n")
    video, status, command = page(source=MOTION_SOURCES[1], upload=str(notes))
    assert video is None and command == ""
    assert status.startswith("**Error:**") and "'notes.mp4' could not be read as a video" in status, status
    assert page()[0] is not None, "the next request is served"


def test_demo_one_frame_video(page, tmp_path):
    still = write_mp4(tmp_path / "still.mp4", np.full((1, 16, 16, 3), 200, np.uint8))
    video, status, _ = page(source=MOTION_SOURCES[1], upload=str(still))
    assert video is None and "'still.mp4' cannot drive a video" in status and "at least 2" in status, status


def test_demo_empty_caption(page):
    video, status, _ = page(caption="   ")
    assert video is None and status == ("**Error:** the caption is empty: S2DM generates from a caption and a "
                                        "motion; write one")


def test_demo_upload_decodes_too_large(page, tmp_path):
    bomb = write_mp4(tmp_path / "bomb.mp4", np.full((60, 512, 512, 3), 90, np.uint8))  # a few KB, 16 megapixels
    video, status, _ = page(DemoLimits(max_decoded_megapixels=10), source=MOTION_SOURCES[1], upload=str(bomb))
    assert video is None and status.startswith(
        "**Error:** 'bomb.mp4' is 16 megapixels by its header (60 frames of 512 x 512); this demo decodes up to "
        "10 megapixels"), status
    assert page()[0] is not None, "the next request is served"


def test_demo_upload_too_large(page, tmp_path):
    video_file = write_mp4(tmp_path / "clip.mp4", np.full((4, 16, 16, 3), 90, np.uint8))
    video, status, _ = page(DemoLimits(max_upload_mb=0.0001), source=MOTION_SOURCES[1], upload=str(video_file))
    assert video is None and "'clip.mp4' is 0.00 MB (" in status and "up to 0.0001 MB (demo --max_upload_mb)" in status
