"""A folder refused by the path rule reads the same on the Train, Evaluate and Data pages: where it leads, how to allow it."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.fixtures import REPO, make_class_folders, shown

pytestmark = pytest.mark.slow  # three AppTest page loads


@pytest.fixture
def linked_out(tmp_path, monkeypatch) -> str:
    """root/shared -> elsewhere (a symlink out of the only allowed root), as a checkout's ../shared can be."""
    monkeypatch.setenv("CATDOG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CATDOG_DATA_ROOTS", str(tmp_path / "root"))
    monkeypatch.delenv("CATDOG_ALLOW_LOCAL_FOLDERS", raising=False)
    make_class_folders(tmp_path / "elsewhere" / "data", n=3)
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "shared").symlink_to(tmp_path / "elsewhere")
    return str(tmp_path / "root" / "shared" / "data")


def _open(page: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60).run()
    return at.switch_page(f"pages/{page}.py").run()


def _enter(at: AppTest, page: str, path: str) -> None:
    if page == "train":
        at.text_input(key="train_data").set_value(path).run()
    elif page == "evaluate":
        at.text_input(key="eval_folder").set_value(path).run()
        at.button(key="eval_run").click().run()
    else:
        at.text_input(key="local_path").set_value(path).run()
        at.button(key="use_local").click().run()


@pytest.mark.parametrize("page", ["train", "evaluate", "data"])
def test_every_page_says_where_a_refused_symlink_leads(linked_out, tmp_path, page):
    at = _open(page)
    _enter(at, page, linked_out)
    assert not at.exception, at.exception
    errors = " ".join(shown(e.value) for e in at.error)
    real = (tmp_path / "elsewhere" / "data").resolve()
    assert f"leads to '{real}' through a symbolic link" in errors, errors
    assert f"CATDOG_DATA_ROOTS={real}" in errors
