"""A demo server on a free local port and a headless Debian chromium driven by Playwright (the browser tests' tools)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = os.environ.get("S2DM_CHROMIUM", "/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
# no GPU, no sandbox (root in CI), and nothing that talks to Google's servers on its own
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVER_START_S = 180


def require_browser() -> None:
    """Skip (with the reason) only when chromium or Playwright is not installed (`make browser` installs them)."""
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).is_file():
        pytest.skip(f"no chromium at {CHROMIUM}: `make browser` installs it (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="Playwright is missing: pip install -e '.[dev]'")
    pytest.importorskip("gradio", reason="Gradio is missing: pip install -e '.[demo]'")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def demo_server(args: list[str], log_path: Path) -> Iterator[str]:
    """``python -m s2dm_lightning demo ARGS --port P`` until the page answers; yields its URL, stops it after."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "GRADIO_ANALYTICS_ENABLED": "False"}
    with open(log_path, "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "s2dm_lightning", "demo", *args, f"--port={port}"],
                                  cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.monotonic() + SERVER_START_S
            while True:
                if server.poll() is not None:
                    raise AssertionError(f"the demo exited ({server.returncode}):\n{log_path.read_text()[-3000:]}")
                try:
                    urllib.request.urlopen(url, timeout=5).read()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"the demo did not answer in {SERVER_START_S} s") from None
                    time.sleep(0.5)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


@contextmanager
def browser_page(user_data_dir: Path, outside_requests: list[str]) -> Iterator:
    """A page of a fresh headless chromium; every request to a host other than 127.0.0.1 lands in ``outside_requests``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(user_data_dir), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        try:
            page = context.pages[0] if context.pages else context.new_page()

            def note(request) -> None:
                host = urlparse(request.url).hostname
                if request.url.startswith(("http:", "https:", "ws:", "wss:")) and host not in ("127.0.0.1", "localhost"):
                    outside_requests.append(request.url)

            page.on("request", note)
            yield page
        finally:
            context.close()
