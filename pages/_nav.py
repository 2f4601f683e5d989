"""The app's navigation, for a page file that Streamlit runs on its own.

Apart from pages/_ui.py because it starts the entry point (streamlit_app.py),
which itself imports pages/_ui.py: kept here, no module imports the other back.
"""

from __future__ import annotations

import streamlit as st

from pages._gate import require_sign_in
from pages._ui import APP_NAVIGATION_KEY


def use_app_navigation() -> None:
    """Hand over to the app's entry point when Streamlit runs this page file on its own.

    With a top-level `pages/` folder, Streamlit's first run in a fresh server
    process uses its own pages/ discovery: a first visit straight to /train runs
    pages/train.py alone, without the app's layout and menu. The entry point
    marks the session (`APP_NAVIGATION_KEY`); an unmarked page run calls its
    `main()`, whose `st.navigation` runs this page inside the app, then stops.
    AppTest drives the entry point itself, so its pages are already marked.
    A marked session is still checked for its sign-in here (`pages._gate`): the
    page must never draw or act for a session that has not signed in.
    """
    if st.session_state.get(APP_NAVIGATION_KEY):
        require_sign_in()
        return
    import streamlit_app

    streamlit_app.main()
    st.stop()
