"""Real browser, end to end: `streamlit run` on 127.0.0.1, headless Chromium via Playwright.

Uses Debian's chromium (scripts/install-browser.sh), never a Playwright browser
download. Skips with the reason when Chromium or Playwright is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import CAT_COLOUR, DOG_COLOUR, REPO, image_bytes

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SERVER_START_TIMEOUT = 90
PREDICT_TIMEOUT_MS = 120_000  # the first prediction imports TensorFlow and loads the model


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.time() + SERVER_START_TIMEOUT
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"streamlit did not answer in {SERVER_START_TIMEOUT}s:\n{log.read_text()[-3000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    """Terminate the server's whole process group, then make sure it is gone."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}; run `bash scripts/install-browser.sh` (Debian's chromium package)")
    playwright = pytest.importorskip("playwright.sync_api", reason="the `playwright` package is not installed (requirements.txt)")
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def studio(tmp_path_factory, tiny_run):
    """`streamlit run streamlit_app.py` with its own CATDOG_HOME and the tiny model active."""
    home = tmp_path_factory.mktemp("browser-home")
    env = dict(os.environ, CATDOG_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("CATDOG_RUNS_DIR", None)
    subprocess.run([sys.executable, "-m", "catdog", "use", str(tiny_run.path)], env=env, cwd=REPO, check=True, capture_output=True)
    port = free_port()
    log = home / "streamlit.log"
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        yield url
    finally:
        stop_server(proc)


def test_dropping_a_photo_on_the_predict_page_shows_its_label(chromium, studio, tiny_run):
    photos = {"dog.jpg": image_bytes(colour=DOG_COLOUR, seed=11), "cat.jpg": image_bytes(colour=CAT_COLOUR, seed=12)}
    from catdog.predict import Predictor

    expected = [r.label.capitalize() for r in Predictor.load(tiny_run.path).predict(list(photos.values()))]
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(f"{studio}/predict", wait_until="domcontentloaded")
        upload = page.locator("input[type=file]").first
        upload.wait_for(state="attached", timeout=PREDICT_TIMEOUT_MS)
        upload.set_input_files([{"name": name, "mimeType": "image/jpeg", "buffer": data} for name, data in photos.items()])
        page.get_by_text("Results: 2 of 2 classified").wait_for(timeout=PREDICT_TIMEOUT_MS)
        confidence = page.get_by_text(re.compile(r"\d+\.\d% confident"))
        confidence.nth(1).wait_for(timeout=30_000)  # the cards stream in after the heading
        labels = [h.inner_text() for h in page.locator("h3").all()]
        predicted = [m.group(1) for label in labels if (m := re.search(r"\b(Cat|Dog)\b", label))]
        assert predicted == expected, labels
        # Landing straight on /predict still gets the app's own menu, not Streamlit's pages/ listing.
        nav = page.locator("[data-testid=stSidebarNav]")
        assert nav.get_by_text("Home", exact=True).count() == 1 and nav.get_by_text("ui", exact=True).count() == 0
        assert confidence.count() == 2
        assert page.locator("[data-testid=stException]").count() == 0
    finally:
        page.close()


def test_every_page_opens_without_an_error(chromium, studio):
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    try:
        for path, heading in (("", "catdog studio"), ("train", "Train"), ("runs", "Runs")):
            page.goto(f"{studio}/{path}", wait_until="domcontentloaded")
            page.locator("h1", has_text=heading).first.wait_for(timeout=60_000)
            assert page.locator("[data-testid=stException]").count() == 0, path
    finally:
        page.close()
