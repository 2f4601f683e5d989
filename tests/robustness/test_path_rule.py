"""One path rule for every path that comes from the browser, and no symlink out of a dataset."""

from __future__ import annotations

import os
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from catdog import config, data, inspect
from catdog.errors import DatasetError
from tests.fixtures import REPO, make_class_folders

TIMEOUT = 60


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A server whose allowed root is tmp/root; the dataset tmp/outside lies beyond it."""
    monkeypatch.setenv("CATDOG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CATDOG_RUNS_DIR", raising=False)
    monkeypatch.setenv("CATDOG_DATA_ROOTS", str(tmp_path / "root"))
    monkeypatch.delenv("CATDOG_ALLOW_LOCAL_FOLDERS", raising=False)
    (tmp_path / "root").mkdir()
    return make_class_folders(tmp_path / "outside", n=3)


def _page(name: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT).run()
    return at.switch_page(f"pages/{name}.py").run()


def _shown_text(at: AppTest) -> str:
    return " ".join(e.value for e in at.error) + " ".join(str(getattr(e, "value", "")) for e in at.caption)


@pytest.mark.parametrize("allow", ["1", "0"])
def test_the_evaluate_page_applies_the_path_rule(served, monkeypatch, allow, stats):
    monkeypatch.setenv("CATDOG_ALLOW_LOCAL_FOLDERS", allow)
    at = _page("evaluate")
    at.text_input(key="eval_folder").set_value(str(served)).run()
    at.button(key="eval_run").click().run()
    stats.fault()
    assert not at.exception, at.exception
    message = at.error[0].value
    assert ("turned off" if allow == "0" else "outside the allowed folders") in message
    assert not at.metric and not at.get("imgs")  # nothing from the folder was read or shown


@pytest.mark.parametrize("allow", ["1", "0"])
def test_the_train_page_dataset_box_applies_the_path_rule(served, monkeypatch, allow, stats):
    monkeypatch.setenv("CATDOG_ALLOW_LOCAL_FOLDERS", allow)
    at = _page("train")
    at.text_input(key="train_data").set_value(str(served)).run()
    stats.fault()
    assert not at.exception, at.exception
    assert ("turned off" if allow == "0" else "outside the allowed folders") in at.error[0].value
    assert at.button(key="train_start").disabled


def test_the_apps_own_datasets_stay_usable_with_local_folders_off(served, monkeypatch, stats):
    from catdog import sources

    monkeypatch.setenv("CATDOG_ALLOW_LOCAL_FOLDERS", "0")
    own = make_class_folders(config.datasets_dir() / "uploaded", n=3)
    assert sources.resolve_local_folder(own) == own.resolve()
    at = _page("train")
    at.text_input(key="train_data").set_value(str(own)).run()
    assert not at.error and not at.button(key="train_start").disabled
    stats.input(True)


def test_a_class_folder_symlinked_out_of_the_root_is_not_listed_shown_or_quarantined(tmp_path, stats):
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    ds = make_class_folders(root / "ds", n=3)
    make_class_folders(elsewhere, n=3)
    (elsewhere / "cats" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    shutil.rmtree(ds / "cats")
    (ds / "cats").symlink_to(elsewhere / "cats", target_is_directory=True)
    (ds / "dogs" / "stolen.jpg").symlink_to(elsewhere / "dogs" / "dog000.jpg")
    (ds / "dogs" / "stolen-broken.jpg").symlink_to(elsewhere / "cats" / "broken.jpg")
    before = sorted(p.name for p in (elsewhere / "cats").iterdir())
    stats.fault(3)
    with pytest.raises(DatasetError, match="one class folder"):
        data.discover(ds)
    # With a real cats folder beside them, the links out are still left alone.
    make_class_folders(root / "ds2", n=3)
    (root / "ds2" / "dogs" / "stolen.jpg").symlink_to(elsewhere / "dogs" / "dog000.jpg")
    (root / "ds2" / "cats" / "broken.jpg").symlink_to(elsewhere / "cats" / "broken.jpg")
    layout = data.discover(root / "ds2")
    assert all(root in p.resolve().parents for p in layout.train.paths)
    report = inspect.inspect_dataset(root / "ds2")
    assert not report.corrupt
    moved = inspect.quarantine(report)
    after = sorted(p.name for p in (elsewhere / "cats").iterdir())
    stats.lost(len(set(before) - set(after)))
    assert moved == [] and after == before


def test_quarantine_never_moves_a_file_reached_through_a_link_out_of_the_dataset(tmp_path, stats):
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    make_class_folders(root / "ds", n=3)
    (root / "ds" / "cats" / "bad.jpg").write_bytes(b"junk")
    (elsewhere).mkdir()
    (elsewhere / "bad.jpg").write_bytes(b"junk")
    report = inspect.inspect_dataset(root / "ds")
    assert [str(rel) for rel, _ in report.corrupt] == [os.path.join("cats", "bad.jpg")]
    # The class folder is swapped for a link out of the dataset after the report was made.
    shutil.move(str(root / "ds" / "cats"), str(tmp_path / "cats-real"))
    (root / "ds" / "cats").symlink_to(elsewhere, target_is_directory=True)
    stats.fault()
    moved = inspect.quarantine(report)
    kept = (elsewhere / "bad.jpg").is_file() and (elsewhere / "bad.jpg").read_bytes() == b"junk"
    stats.lost(int(not kept))
    assert moved == [] and kept
