"""The password gate in a real browser: a login that behaves like one, and an app that calls no one else.

`streamlit run` with CATDOG_PASSWORD on 127.0.0.1, headless Debian Chromium via
Playwright (skipped with the reason when either is missing). Screenshots go to
$CATDOG_SHOTS when it is set.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.fixtures import CAT_COLOUR, image_bytes
from tests.server import streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "correct horse battery"
TIMEOUT_MS = 90_000  # a page's first run imports TensorFlow
HOSTILE_NAME = "[click me](javascript:alert(1)) :red[red] $x$.jpg"


@pytest.fixture(scope="module")
def gated(tmp_path_factory, tiny_run):
    """A password-protected studio with the tiny model active."""
    with streamlit_server(tmp_path_factory.mktemp("gate-home"), tiny_run.path, CATDOG_PASSWORD=PASSWORD) as (url, _log):
        yield url


def shot(page, name: str) -> None:
    folder = os.environ.get("CATDOG_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def outside_requests(context) -> list[str]:
    """Start recording every request the pages of `context` make to a host other than 127.0.0.1."""
    seen: list[str] = []
    context.on("request", lambda req: seen.append(req.url) if urlparse(req.url).hostname not in ("127.0.0.1", None) else None)
    return seen


@contextlib.contextmanager
def opened(chromium, url: str):
    """A fresh browser context at `url` (a 1280 px window): yields (context, page, outside requests); closed after."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    outside = outside_requests(context)
    page = context.new_page()
    try:
        page.goto(url, wait_until="domcontentloaded")
        yield context, page, outside
    finally:
        context.close()


def sign_in(page, password: str) -> None:
    field = page.locator("input[type=password]")
    field.wait_for(timeout=TIMEOUT_MS)
    field.fill(password)
    page.get_by_role("button", name="Enter").click()


def test_deep_link_signs_in_to_the_page_asked_for_and_a_reload_keeps_it(chromium, gated):
    with opened(chromium, f"{gated}/runs") as (context, page, outside):
        page.locator("input[type=password]").wait_for(timeout=TIMEOUT_MS)
        page.wait_for_timeout(1500)  # a "Page not found" dialog would come after the form
        shot(page, "1-deep-link-form")
        assert page.get_by_text("Page not found").count() == 0 and page.get_by_role("dialog").count() == 0
        assert page.locator("h1", has_text="Runs").count() == 0
        sign_in(page, "not the password")
        page.get_by_text("Wrong password").wait_for(timeout=TIMEOUT_MS)
        shot(page, "2-wrong-password")
        assert page.locator("h1", has_text="Runs").count() == 0 and page.locator("[data-testid=stSidebarNav]").count() == 0
        sign_in(page, PASSWORD)
        page.locator("h1", has_text="Runs").wait_for(timeout=TIMEOUT_MS)  # the page asked for, not Home
        assert urlparse(page.url).path.rstrip("/").endswith("/runs")
        page.locator("input[type=password]").wait_for(state="detached", timeout=TIMEOUT_MS)  # the form is gone
        page.wait_for_timeout(1500)  # the cookie is written by the page after sign-in
        shot(page, "3-after-sign-in")
        page.reload(wait_until="domcontentloaded")
        page.locator("h1", has_text="Runs").wait_for(timeout=TIMEOUT_MS)
        page.wait_for_timeout(1000)
        assert page.locator("input[type=password]").count() == 0
        shot(page, "4-after-reload")
        tab = context.new_page()  # a new tab of the same browser
        tab.goto(f"{gated}/train", wait_until="domcontentloaded")
        tab.locator("h1", has_text="Train").wait_for(timeout=TIMEOUT_MS)
        tab.wait_for_timeout(1000)
        assert tab.locator("input[type=password]").count() == 0
        cookie = next(c for c in context.cookies() if c["name"] == "catdog_session")
        assert PASSWORD not in cookie["value"] and cookie["expires"] == -1  # a token, for this browser session only
        assert outside == [], outside


def test_a_wrong_password_shows_nothing_and_another_browser_is_not_signed_in(chromium, gated):
    with opened(chromium, f"{gated}/train") as (_context, page, _outside):
        sign_in(page, PASSWORD.upper())
        page.get_by_text("Wrong password").wait_for(timeout=TIMEOUT_MS)
        body = page.locator("[data-testid=stMain]").inner_text()
        assert "Start training" not in body and "Dataset folder" not in body
        assert page.locator("[data-testid=stSidebarNav]").count() == 0 and page.locator("h1", has_text="Train").count() == 0


def test_upload_names_are_plain_text_and_no_page_calls_an_outside_host(chromium, gated):
    with opened(chromium, f"{gated}/predict") as (_context, page, outside):
        sign_in(page, PASSWORD)
        upload = page.locator("input[type=file]").first
        upload.wait_for(state="attached", timeout=TIMEOUT_MS)
        photo = image_bytes(colour=CAT_COLOUR, seed=3)
        upload.set_input_files([{"name": HOSTILE_NAME, "mimeType": "image/jpeg", "buffer": photo},
                                {"name": "broken :red[x].jpg", "mimeType": "image/jpeg", "buffer": b"not a photo"}])
        page.get_by_text(re.compile(r"Results: 1 of 2 classified")).wait_for(timeout=TIMEOUT_MS)
        page.get_by_text(re.compile(r"· P\(dog\) ")).first.wait_for(timeout=30_000)  # the card's caption, whatever its verdict
        shot(page, "5-hostile-names")
        main = page.locator("[data-testid=stMain]")
        assert main.locator("a[href^='javascript']").count() == 0
        assert HOSTILE_NAME in main.inner_text() and "broken :red[x].jpg" in main.inner_text()
        for path in ("", "data", "train", "runs", "evaluate"):
            page.goto(f"{gated}/{path}", wait_until="domcontentloaded")
            page.locator("h1").first.wait_for(timeout=TIMEOUT_MS)
            page.wait_for_timeout(500)
        assert outside == [], outside
