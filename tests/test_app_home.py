"""Home view and navigation (AppTest): active model, dataset, running training, every page."""

from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

from catdog import predict, runs
from tests.fixtures import REPO, shown

TIMEOUT = 60
PAGES = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "pages").glob("*.py") if not p.name.startswith("_"))


pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_bundled_model")]  # AppTest with TensorFlow; no bundled model


def open_home() -> AppTest:
    return AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT).run()


def text_of(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info])


def test_fresh_install_says_there_is_no_model_and_no_training(home):
    at = open_home()
    assert not at.exception
    assert "catdog studio" in at.title[0].value
    assert "No model yet" in text_of(at)
    assert "Idle" in text_of(at)


def test_home_names_the_active_model_and_the_running_training(home, tiny_run):
    predict.set_active_model(tiny_run.path)
    run = runs.create_run(None, "busy-run")
    run.write_config({"model": "seed", "epochs": 5})
    run.write_status("running", pid=os.getpid())
    runs.acquire_lock(run)
    try:
        at = open_home()
    finally:
        runs.release_lock()
    page = text_of(at)
    assert "tiny-seed" in page and "preset **seed**" in page
    assert "busy-run" in page and "running" in page


def _navigation_titles() -> None:
    import streamlit as st

    import streamlit_app

    st.session_state["titles"] = [page.title for page in streamlit_app.build_pages()]


def test_navigation_lists_home_and_every_page_file_that_exists(home):
    at = AppTest.from_function(_navigation_titles, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    titles = at.session_state["titles"]
    assert titles[0] == "Home" and {"Train", "Predict", "Runs"} <= set(titles)
    for name, title in (("data", "Data"), ("evaluate", "Evaluate")):
        assert (title in titles) == (REPO / "pages" / f"{name}.py").exists()


@pytest.mark.parametrize("page", PAGES)
def test_every_page_in_the_navigation_renders_without_an_exception(home, page):
    at = open_home()
    at.switch_page(page).run()  # raises if st.navigation did not register the page
    assert not at.exception, at.exception
    assert at.title


EVIL_NAME = "![x](https:evil.example) [click me](https:evil.example) :red[RED]"


def test_the_model_card_shows_folder_names_as_typed_never_as_markdown(home, tmp_path):
    """A --negatives folder (and an evaluation folder) named as Markdown reads as typed on Home's model card."""
    import json
    import zipfile

    run = runs.create_run(None, "evil-names")
    with zipfile.ZipFile(run.model_path, "w") as zf:  # enough of a .keras archive to be listed (never loaded)
        zf.writestr("config.json", "{}")
    (run.path / "openset.npz").write_bytes(b"")  # the card reads config.json's record of the check; the file only has to exist
    run.write_config({"model": "seed", "image_size": 32, "class_names": ["cat", "dog"],
                      "openset": {"threshold": 2.0, "negatives_flagged": {EVIL_NAME: 0.5}}})
    (run.path / "evaluation.json").write_text(json.dumps({"accuracy": 0.9, "n": 10, "data": str(tmp_path / EVIL_NAME)}))
    predict.set_active_model(run.path)
    at = open_home()
    assert not at.exception, at.exception
    raw = text_of(at)
    assert "](https:evil.example)" not in raw and ":red[RED]" not in raw, raw
    assert f"{EVIL_NAME} 50.0%" in shown(raw), shown(raw)  # the name itself is still there, as typed
    assert f"photos in {tmp_path.name}/{EVIL_NAME}" in shown(raw), shown(raw)


def test_the_model_card_says_the_check_in_words_and_folds_the_operating_point(home):
    import zipfile

    run = runs.create_run(None, "checked")
    with zipfile.ZipFile(run.model_path, "w") as zf:  # enough of a .keras archive to be listed (never loaded)
        zf.writestr("config.json", "{}")
    (run.path / "openset.npz").write_bytes(b"")
    run.write_config({"model": "lite0", "image_size": 224, "class_names": ["cat", "dog"],
                      "openset": {"parts": ["imagenet"], "threshold": 1.81, "held_out_flagged": 0.021, "threshold_from": 725,
                                  "method": "ImageNet: the summed probability of ImageNet's cat and dog classes"}})
    predict.set_active_model(run.path)
    at = open_home()
    assert not at.exception, at.exception
    details = next(e for e in at.expander if e.label == "How the check decides")
    folded = {c.value for c in details.caption}
    shown_now = [shown(c.value) for c in at.caption if c.value not in folded]
    assert "Says “Not a cat or dog” for photos without a cat or dog in them; wrongly flags about 1 in 50 pet photos." in shown_now
    assert not any("threshold" in c for c in shown_now), shown_now  # the jargon waits behind the toggle
    assert "threshold 1.81 · flags 2.1% of 725 held-out training photos" in shown(" ".join(folded))
