"""Pages that fit (real browser): at 1440 px and on a 390 px phone nothing scrolls sideways.

Headless Chromium (Debian's, tests/server.py) on a studio whose runs folder holds a trained run.
"""

from __future__ import annotations

import shutil
import time

import pytest

from tests.server import streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDE, PHONE = 1440, 390
LOAD_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def studio_with_a_run(tmp_path_factory, tiny_run):
    home = tmp_path_factory.mktemp("layout-home")
    shutil.copytree(tiny_run.path, home / "runs" / tiny_run.id)
    with streamlit_server(home) as (url, _log):
        yield url, tiny_run.id


def _open(chromium, url: str, width: int, ready: str):
    page = chromium.new_page(viewport={"width": width, "height": 1000})
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_text(ready).first.wait_for(timeout=LOAD_TIMEOUT_MS)
    time.sleep(1.5)  # the grid and the cards settle
    return page


def _page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


@pytest.mark.parametrize("width", [WIDE, PHONE])
@pytest.mark.parametrize("path", ["runs", ""])
def test_no_page_scrolls_sideways_and_every_run_card_fits(chromium, studio_with_a_run, path, width):
    url, run_id = studio_with_a_run
    page = _open(chromium, f"{url}/{path}", width, "newest first" if path else "Where to next")
    try:
        assert _page_width(page) <= width
        if path == "runs":
            card = page.locator(".st-key-runs_cards").get_by_text(run_id).first
            box = card.bounding_box()
            assert card.is_visible() and box["x"] + box["width"] <= width
            assert page.locator("[data-testid=stDataFrame]").count() == 0  # cards, no table cut off on the right
    finally:
        page.close()
