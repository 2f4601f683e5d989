"""catdog studio: the Streamlit entry point (`streamlit run streamlit_app.py`).

It sets up the page, the navigation (`st.navigation` over the files in pages/)
and the Home view.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from catdog import catalog, config, jobs
from pages._gate import gate_ui, remember_ui, require_sign_in, signed_in
from pages._text import code_span, plain
from pages._ui import APP_NAVIGATION_KEY, default_dataset, model_card_ui, nav_link

PAGES_DIR = Path(__file__).resolve().parent / "pages"
PAGE_ICON = Path(__file__).resolve().parent / "assets" / "favicon.png"  # local: a ":material/…:" icon is fetched from a font server
PAGES = (
    ("data", "Data", ":material/folder_open:"),
    ("train", "Train", ":material/model_training:"),
    ("predict", "Predict", ":material/image_search:"),
    ("runs", "Runs", ":material/history:"),
    ("evaluate", "Evaluate", ":material/analytics:"),
)


def home() -> None:
    """Which dataset and model are active, whether a training runs, and where to go."""
    require_sign_in()  # the entry point checked already; every page checks again
    st.title(":material/pets: catdog studio")
    st.caption("Train a cats-vs-dogs classifier, watch it learn, and try it on your own photos.")
    left, middle, right = st.columns(3)
    with left, st.container(border=True):
        _model_card()
    with middle, st.container(border=True):
        _dataset_card()
    with right, st.container(border=True):
        _training_card()
    st.subheader("Where to next")
    cols = st.columns(4)
    links = [
        ("predict", "Classify photos", ":material/image_search:", "Start here: try the sample photos with the bundled model."),
        ("data", "Get a dataset", ":material/folder_open:", "Upload a zip, download from Kaggle, or check a folder."),
        ("train", "Train a model", ":material/model_training:", "Watch it learn, live; it keeps going if you close the tab."),
        ("runs", "Compare runs", ":material/history:", "Every model, its curves, and a report to hand out."),
    ]
    for col, (name, label, icon, text) in zip(cols, links):
        with col:
            nav_link(name, label, icon, text)


def _model_card() -> None:
    st.markdown("**Active model**")
    entry = catalog.active_entry()
    if entry is None:
        st.info("No model yet. Train one on the Train page, then choose *Use this model for Predict*.")
        return
    model_card_ui(entry, mark_active=False)  # the card's heading says so


def _dataset_card() -> None:
    st.markdown("**Dataset**")
    dataset = default_dataset()
    if dataset:
        st.markdown(code_span(dataset))
        st.caption("Suggested on the Train page; change it there.")
    else:
        st.info("No dataset chosen yet. Point the Train page at a folder with cats/ and dogs/ in it.")


def _training_card() -> None:
    st.markdown("**Training**")
    run = jobs.active_run()
    if run is None:
        st.caption(f"Idle. Runs are kept in {code_span(config.runs_dir())}.")
        return
    status = jobs.job_status(run)
    rows = run.metrics()
    st.markdown(f":green[:material/play_circle:] {code_span(run.id)} is {status.state}")
    st.caption(f"{len(rows)}/{plain(run.config().get('epochs', '?'))} epochs done. Watch it on the Train page.")


def build_pages() -> list:
    """Home, then the pages in pages/."""
    pages = [st.Page(home, title="Home", icon=":material/home:", default=True)]
    return pages + [st.Page(PAGES_DIR / f"{name}.py", title=title, icon=icon) for name, title, icon in PAGES]


def _locked() -> None:
    """Every URL's page before the password is given: the form only.

    The form is drawn inside a page (not before `st.navigation`) so its widgets
    keep one identity from the first run on: Streamlit keys a widget by the page
    it is drawn in, and a server's first run goes through its pages/ mode.
    """
    gate_ui()


def locked_pages() -> list:
    """The app's URLs, each showing only the form: a deep link (/runs) is no "Page not found",
    and after signing in the same URL opens the page asked for (a page is found by its URL path)."""
    pages = [st.Page(_locked, title="Sign in", default=True)]
    return pages + [st.Page(_locked, title="Sign in", url_path=name) for name, _title, _icon in PAGES]


def main() -> None:
    st.set_page_config(page_title="catdog studio", page_icon=str(PAGE_ICON), layout="wide")
    if not signed_in():  # only when CATDOG_PASSWORD or [auth] password is set
        st.navigation(locked_pages(), position="hidden").run()
        st.stop()
    st.session_state[APP_NAVIGATION_KEY] = True  # after the gate: an interrupted run must not mark a locked session
    remember_ui()
    st.navigation(build_pages()).run()


if __name__ == "__main__":  # `streamlit run` executes this file as __main__
    main()
