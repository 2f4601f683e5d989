"""Data page (AppTest): report, quarantine, active dataset, local folder, Kaggle errors."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from catdog import config, kaggle, sources
from tests.fixtures import REPO, make_class_folders

pytestmark = pytest.mark.slow  # TensorFlow models or trainings; `pytest -m "not slow"` leaves them out

TIMEOUT = 60
FAKE_KEY = "f4k3k3y0123456789abcdef0123456789"


@pytest.fixture(autouse=True)
def _data_roots(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CATDOG_DATA_ROOTS", str(tmp_path))


def open_data_page() -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT).run()
    return at.switch_page("pages/data.py").run()


def _texts(at) -> str:
    return " ".join(str(e.value) for kind in (at.info, at.error, at.success, at.warning, at.caption) for e in kind)


def test_no_dataset_yet_says_how_to_get_one(home):
    at = open_data_page()
    assert not at.exception
    assert "No dataset yet" in _texts(at)


def test_report_lists_counts_and_bad_files_and_quarantine_moves_them(home):
    ds = make_class_folders(config.datasets_dir() / "pets", n=3)
    (ds / "cats/broken.jpg").write_bytes(b"")
    at = open_data_page()
    assert not at.exception
    assert [m.value for m in at.metric][:1] == ["7"]
    assert at.metric[2].value == "1"
    at.button(key="quarantine").click().run()
    assert "Moved 1 files" in _texts(at)
    assert (ds.parent / "pets.quarantine/cats/broken.jpg").exists()


def test_a_photo_added_inside_a_class_folder_shows_in_the_next_visitors_report(home):
    from tests.fixtures import write_image

    ds = make_class_folders(config.datasets_dir() / "pets", n=3)
    assert open_data_page().metric[0].value == "6"
    write_image(ds / "dogs/new.jpg", seed=99)  # changes dogs/'s time, not the dataset folder's
    assert open_data_page().metric[0].value == "7"


def test_use_for_training_sets_the_active_dataset(home):
    ds = make_class_folders(config.datasets_dir() / "pets", n=2)
    at = open_data_page()
    at.button(key="set_active").click().run()
    assert sources.active_dataset() == ds.resolve()


def test_local_folder_outside_the_roots_is_refused(home, tmp_path):
    at = open_data_page()
    at.text_input(key="local_path").input("/etc").run()
    at.button(key="use_local").click().run()
    assert "outside the allowed folders" in _texts(at)


def test_local_folder_inside_the_root_is_reported(home, tmp_path):
    ds = make_class_folders(tmp_path / "mine", n=2)
    at = open_data_page()
    at.text_input(key="local_path").input(str(ds)).run()
    at.button(key="use_local").click().run()
    assert not at.exception
    assert at.selectbox(key="data_pick").value == str(ds.resolve())


def test_kaggle_failure_is_a_message_without_the_key(home, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", FAKE_KEY)

    def refuse():
        raise kaggle.KaggleAuthError("Kaggle rejected the credentials (401); create a new API token")
    monkeypatch.setattr(kaggle, "real_client", refuse)
    at = open_data_page()
    at.button(key="kaggle_download").click().run()
    assert not at.exception
    assert "rejected the credentials" in _texts(at)
    assert FAKE_KEY not in _texts(at) + " ".join(str(m.value) for m in at.markdown)


def _zip_bytes(top: str) -> bytes:
    import io
    import zipfile

    from tests.fixtures import image_bytes

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for cls in ("cats", "dogs"):
            for i in range(2):
                zf.writestr(f"{top}/{cls}/{cls}{i}.jpg", image_bytes(seed=i))
    return buf.getvalue()


def test_each_import_selects_the_new_dataset_and_it_can_be_removed(home):
    at = open_data_page()
    assert "MB per file, a zip included" in _texts(at)
    for name in ("first", "second"):
        at.file_uploader(key="data_zip").set_value([(f"{name}.zip", _zip_bytes(name), "application/zip")]).run()
        at.button(key="import_zip").click().run()
        assert not at.exception, at.exception
        assert at.selectbox(key="data_pick").value.endswith(name)
    assert (config.datasets_dir() / "second" / "cats").is_dir()  # the one top folder was unwrapped
    at.button(key="data_remove").click().run()
    at.button(key="data_remove_yes").click().run()
    assert not (config.datasets_dir() / "second").exists() and (config.datasets_dir() / "first").exists()
