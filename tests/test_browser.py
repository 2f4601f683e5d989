"""Real browser, end to end: `streamlit run` on 127.0.0.1, headless Chromium via Playwright.

Uses Debian's chromium (scripts/install-browser.sh), never a Playwright browser
download. Skips with the reason when Chromium or Playwright is missing.
"""

from __future__ import annotations

import re

import pytest

from tests.fixtures import CAT_COLOUR, DOG_COLOUR, image_bytes
from tests.server import streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PREDICT_TIMEOUT_MS = 120_000  # the first prediction imports TensorFlow and loads the model


@pytest.fixture(scope="module")
def studio(tmp_path_factory, tiny_run):
    """`streamlit run streamlit_app.py` with its own CATDOG_HOME and the tiny model active."""
    with streamlit_server(tmp_path_factory.mktemp("browser-home"), tiny_run.path) as (url, _log):
        yield url


def test_dropping_a_photo_on_the_predict_page_shows_its_label(chromium, studio, tiny_run):
    photos = {"dog.jpg": image_bytes(colour=DOG_COLOUR, seed=11), "cat.jpg": image_bytes(colour=CAT_COLOUR, seed=12)}
    from catdog.predict import Predictor

    results = Predictor.load(tiny_run.path).predict(list(photos.values()))
    expected = ["Not sure" if r.uncertain else r.label.capitalize() for r in results]  # a tiny model is often unsure
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(f"{studio}/predict", wait_until="domcontentloaded")  # the server's first visit: a deep link
        upload = page.locator("input[type=file]").first
        upload.wait_for(state="attached", timeout=PREDICT_TIMEOUT_MS)
        # The app's own menu (st.navigation), not Streamlit's pages/ discovery (which would list "ui").
        nav = page.locator("[data-testid=stSidebarNav]")
        assert nav.get_by_text("Home", exact=True).count() == 1 and nav.get_by_text("Evaluate", exact=True).count() == 1
        assert nav.get_by_text("ui", exact=True).count() == 0
        upload.set_input_files([{"name": name, "mimeType": "image/jpeg", "buffer": data} for name, data in photos.items()])
        page.get_by_text("Results: 2 of 2 classified").wait_for(timeout=PREDICT_TIMEOUT_MS)
        cards = page.get_by_text(re.compile(r"· P\(dog\) "))  # every card's caption, whatever its verdict
        cards.nth(1).wait_for(timeout=30_000)  # the cards stream in after the heading
        labels = [h.inner_text() for h in page.locator("h3").all()]
        predicted = [m.group(1) for label in labels if (m := re.search(r"\b(Cat|Dog|Not sure)\b", label))]
        assert predicted == expected, labels
        # Landing straight on /predict still gets the app's own menu, not Streamlit's pages/ listing.
        nav = page.locator("[data-testid=stSidebarNav]")
        assert nav.get_by_text("Home", exact=True).count() == 1 and nav.get_by_text("ui", exact=True).count() == 0
        assert cards.count() == 2
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
