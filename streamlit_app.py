"""catdog studio: the Streamlit entry point (minimal until the pages land)."""

from __future__ import annotations

import streamlit as st

from catdog import config
from catdog.predict import default_model


def main() -> None:
    st.set_page_config(page_title="catdog studio", page_icon="🐾", layout="wide")
    st.title("catdog studio")
    model = default_model()
    st.write(f"Runs folder: `{config.runs_dir()}`")
    if model is None:
        st.info("No trained model yet. Train one with `python -m catdog train --data DIR`.")
    else:
        st.write(f"Active model: `{model}`")


main()
