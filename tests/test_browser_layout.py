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


def test_the_runs_table_fits_the_wide_layout_without_scrolling_sideways(chromium, studio_with_a_run):
    url, run_id = studio_with_a_run
    page = _open(chromium, f"{url}/runs", WIDE, "newest first")
    try:
        grids = page.evaluate("""() => [...document.querySelectorAll('[data-testid=stDataFrame]')]
            .filter(d => d.offsetParent !== null)
            .map(d => { const s = d.querySelector('.dvn-scroller'); return [s.scrollWidth, s.clientWidth]; })""")
        assert len(grids) == 1, grids  # the runs table (models are cards)
        assert grids[0][0] <= grids[0][1] + 1, f"the runs table scrolls sideways: {grids[0]}"
        assert _page_width(page) <= WIDE
    finally:
        page.close()


@pytest.mark.parametrize("path", ["runs", ""])
def test_on_a_390_px_phone_the_page_never_scrolls_sideways(chromium, studio_with_a_run, path):
    url, run_id = studio_with_a_run
    page = _open(chromium, f"{url}/{path}", PHONE, "newest first" if path else "Where to next")
    try:
        assert _page_width(page) <= PHONE
        if path == "runs":  # the runs are cards here; the table is hidden
            visible = page.evaluate("""() => [...document.querySelectorAll('[data-testid=stDataFrame]')]
                .filter(d => d.offsetParent !== null).length""")
            assert visible == 0
            card = page.locator(".st-key-runs_narrow").get_by_text(run_id).first
            assert card.is_visible() and card.bounding_box()["x"] + card.bounding_box()["width"] <= PHONE
    finally:
        page.close()
