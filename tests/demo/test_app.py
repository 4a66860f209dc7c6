"""The demo page in a real headless chromium: a clip generates a playable video; a bad upload shows its error.

Slow (a server start of ~30 s of imports, a browser): ``make test-slow`` installs chromium first.
``S2DM_DEMO_CONFIG`` + ``S2DM_DEMO_CKPT`` run the generation test with a trained model instead of the
tiny one and ``S2DM_DEMO_SCREENSHOT`` keeps its screenshot (how docs/images/demo.png was taken).
"""

from __future__ import annotations

import os
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest

from s2dm_lightning.video_files import write_mp4
from tests.demo.browser import browser_page, demo_server, require_browser

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
RESULT_TIMEOUT_MS = 600_000  # sampling on a busy 2-core CPU
NUM_FRAMES = 5
FPS = 8  # the demo's mp4s


def choose_clip(page, index: int = 0) -> str:
    """Open the clip dropdown and pick its ``index``-th entry; returns the entry's text."""
    page.click("#clip input")
    option = page.locator("ul[role=listbox] li").nth(index)
    text = option.inner_text().strip()
    option.click()
    return text


def set_number(page, elem_id: str, value: int) -> None:
    page.fill(f"#{elem_id} input", str(value))
    page.press(f"#{elem_id} input", "Tab")


def status_text(page) -> str:
    return page.inner_text("#status").strip()


def test_choose_a_clip_generate_and_see_a_playable_video_with_the_expected_frames(demo_files, tmp_path):
    require_browser()
    config = os.environ.get("S2DM_DEMO_CONFIG", str(demo_files["config"]))
    ckpt = os.environ.get("S2DM_DEMO_CKPT", str(demo_files["ckpt"]))
    num_frames = int(os.environ.get("S2DM_DEMO_FRAMES", NUM_FRAMES))
    screenshot = Path(os.environ.get("S2DM_DEMO_SCREENSHOT", tmp_path / "demo.png"))
    outside: list[str] = []
    args = ["--config", config, "--ckpt_path", ckpt, f"--output_dir={demo_files['output']}"]
    with demo_server(args, tmp_path / "server.log") as url, browser_page(tmp_path / "chromium", outside) as page:
        page.goto(url)
        page.wait_for_selector("#generate")
        label = choose_clip(page, 0)
        caption = label.split(": ", 1)[1]
        page.wait_for_function("c => document.querySelector('#caption textarea, #caption input').value === c",
                               arg=caption)  # the clip's caption fills in
        page.wait_for_selector("#preview img")  # and its frames and flow
        set_number(page, "frames", num_frames)
        page.click("#generate")
        page.wait_for_selector("#result video[src]", timeout=RESULT_TIMEOUT_MS)
        # playable: the browser decoded the first frame (readyState >= HAVE_CURRENT_DATA) without a media error
        page.wait_for_function("() => { const v = document.querySelector('#result video');"
                               " return v.readyState >= 2 && v.error === null && v.duration > 0; }")
        duration = page.evaluate("() => document.querySelector('#result video').duration")
        source = page.get_attribute("#result video", "src")
        served = page.request.get(source)
        assert served.ok, source
        (tmp_path / "served.mp4").write_bytes(served.body())
        page.wait_for_timeout(1500)  # a few frames played, the command line rendered
        page.screenshot(path=str(screenshot), full_page=True)
        status, command = status_text(page), page.inner_text("#command")
    frames = imageio.mimread(tmp_path / "served.mp4", format="FFMPEG", memtest=False)
    assert len(frames) == num_frames, f"the served video has {len(frames)} frames"
    assert abs(duration * FPS - num_frames) < 0.5, f"the video element plays {duration} s"
    assert frames[0].shape[1] > 3 * frames[0].shape[0], "generated | driving | flow | occlusion side by side"
    assert f"{num_frames} frames" in status and "driving video" in status
    assert "python -m s2dm_lightning sample" in command and f"--num_frames={num_frames}" in command
    assert "--motion_from" in command and caption in command
    assert outside == [], f"the page fetched from outside the server: {outside}"
    assert screenshot.stat().st_size > 10_000


def test_a_non_video_upload_shows_an_error_in_the_page_and_the_app_keeps_serving(demo_files, tmp_path):
    require_browser()
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("these are notes, not a video\n")
    one_frame = write_mp4(tmp_path / "still.mp4", np.full((1, 16, 16, 3), 200, np.uint8))
    args = ["--config", str(demo_files["config"]), "--ckpt_path", str(demo_files["ckpt"]),
            f"--output_dir={demo_files['output']}"]
    with demo_server(args, tmp_path / "server.log") as url, browser_page(tmp_path / "chromium", []) as page:
        page.goto(url)
        page.wait_for_selector("#generate")
        page.check("#motion-source input[value='upload a video']")
        page.fill("#caption textarea, #caption input", "a red square moves up")
        for upload, expected in ((not_a_video, "could not be read as a video"), (one_frame, "at least 2")):
            page.set_input_files("#upload input[type=file]", str(upload))
            page.wait_for_timeout(1000)  # the upload reaches the server
            page.click("#generate")
            page.wait_for_function("t => document.querySelector('#status').innerText.includes(t)", arg=expected,
                                   timeout=120_000)
            message = status_text(page)
            assert message.startswith("Error:") and upload.name in message, message
            assert "Traceback" not in page.content()
            clear = page.locator("#upload button[aria-label='Clear']")
            if clear.count():  # the next file replaces this one
                clear.first.click()
    assert "Traceback" not in (tmp_path / "server.log").read_text(), "a bad upload is not a server error"


def test_an_upload_past_the_limits_shows_the_limit_in_the_page(demo_files, tmp_path):
    """A few-KB file that decodes to 16 megapixels, against --max_decoded_megapixels=10; then a file over
    --max_upload_mb, which Gradio's page refuses before uploading it (its own message)."""
    require_browser()
    bomb = write_mp4(tmp_path / "bomb.mp4", np.full((60, 512, 512, 3), 90, np.uint8))
    big = write_mp4(tmp_path / "big.mp4", np.random.default_rng(0).integers(0, 255, (8, 128, 128, 3), np.uint8))
    assert bomb.stat().st_size < 40_000 and big.stat().st_size > 20_000
    args = ["--config", str(demo_files["config"]), "--ckpt_path", str(demo_files["ckpt"]),
            f"--output_dir={demo_files['output']}", "--max_decoded_megapixels=10", "--max_upload_mb=0.02"]
    with demo_server(args, tmp_path / "server.log") as url, browser_page(tmp_path / "chromium", []) as page:
        page.goto(url)
        page.wait_for_selector("#generate")
        assert "up to 0.02 MB, 10 megapixels decoded" in page.inner_text("#upload")
        page.check("#motion-source input[value='upload a video']")
        page.fill("#caption textarea, #caption input", "a red square moves up")
        page.set_input_files("#upload input[type=file]", str(bomb))
        page.wait_for_timeout(1000)
        page.click("#generate")
        expected = "'bomb.mp4' is 16 megapixels by its header (60 frames of 512 x 512)"
        page.wait_for_function("t => document.querySelector('#status').innerText.includes(t)", arg=expected,
                               timeout=120_000)
        assert "--max_decoded_megapixels" in status_text(page)
        clear = page.locator("#upload button[aria-label='Clear']")
        if clear.count():
            clear.first.click()
        page.set_input_files("#upload input[type=file]", str(big))
        page.wait_for_function("() => document.body.innerText.includes('exceed the maximum allowed size')",
                               timeout=60_000)  # Gradio's words ("File(s) exceed the maximum allowed size of ...")
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log and "demo: serving 127.0.0.1 only" in log
