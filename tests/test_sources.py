"""Local folders behind an allow-list, uploads into CATDOG_HOME/datasets, the active dataset."""

from __future__ import annotations

import io
import os
import zipfile

import pytest

from catdog import data, sources
from catdog.archive import ArchiveError
from catdog.errors import DatasetError


@pytest.fixture(autouse=True)
def _own_home(tmp_path, monkeypatch):
    """Datasets and the active choice go to this test's CATDOG_HOME, not the session's (the Train page tests read it)."""
    monkeypatch.setenv("CATDOG_HOME", str(tmp_path / "home"))


def test_folder_inside_allowed_root_is_accepted(tmp_path, monkeypatch):
    (tmp_path / "root/ds").mkdir(parents=True)
    monkeypatch.setenv("CATDOG_DATA_ROOTS", str(tmp_path / "root"))
    assert sources.resolve_local_folder(tmp_path / "root/ds") == (tmp_path / "root/ds").resolve()


def test_dotdot_and_symlinks_cannot_escape_the_root(tmp_path, monkeypatch):
    (tmp_path / "root").mkdir()
    (tmp_path / "secret").mkdir()
    (tmp_path / "root/link").symlink_to(tmp_path / "secret")
    monkeypatch.setenv("CATDOG_DATA_ROOTS", str(tmp_path / "root"))
    for bad in (tmp_path / "root/../secret", tmp_path / "root/link", "/etc"):
        with pytest.raises(DatasetError, match="outside the allowed folders"):
            sources.resolve_local_folder(bad)


def test_local_folders_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("CATDOG_ALLOW_LOCAL_FOLDERS", "0")
    with pytest.raises(DatasetError, match="turned off"):
        sources.resolve_local_folder(tmp_path)


def test_uploaded_zip_lands_in_datasets_with_a_fresh_name(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("cats/a.jpg", b"x")
    first = sources.import_zip(io.BytesIO(buf.getvalue()), "my pets.zip")
    second = sources.import_zip(io.BytesIO(buf.getvalue()), "my pets.zip")
    assert first.name == "my-pets" and second.name == "my-pets-2"
    assert (first / "cats/a.jpg").read_bytes() == b"x"


def test_folder_upload_rejects_escaping_names_and_leaves_nothing(tmp_path):
    with pytest.raises(ArchiveError):
        sources.import_files([("cats/a.jpg", b"x"), ("../evil.jpg", b"y")], "up")
    assert not any(p.name.startswith("up") for p in sources.config.datasets_dir().iterdir())


def test_active_dataset_round_trips_and_is_visible_through_catdog_data(tmp_path):
    sources.set_active_dataset(tmp_path)
    assert data.active_dataset() == tmp_path.resolve()
    with pytest.raises(DatasetError):
        sources.set_active_dataset(tmp_path / "missing")


def _zip_of(names: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in names.items():
            zf.writestr(name, content)
    buf.seek(0)
    return buf


def test_a_compressed_folder_with_one_top_folder_is_unwrapped():
    archive = _zip_of({"pets/cats/a.jpg": b"x", "pets/dogs/b.jpg": b"y", "__MACOSX/pets/._a.jpg": b"z"})
    folder = sources.import_zip(archive, "pets.zip")
    assert sorted(p.name for p in folder.iterdir()) == ["cats", "dogs"]
    assert (folder / "cats" / "a.jpg").read_bytes() == b"x"


def test_a_single_class_folder_is_not_unwrapped():
    folder = sources.import_zip(_zip_of({"cats/a.jpg": b"x"}), "cats.zip")
    assert [p.name for p in folder.iterdir()] == ["cats"]


def test_only_datasets_catdog_stored_can_be_removed(tmp_path):
    folder = sources.import_zip(_zip_of({"cats/a.jpg": b"x", "dogs/b.jpg": b"y"}), "two.zip")
    sources.set_active_dataset(folder)
    elsewhere = tmp_path / "mine"
    elsewhere.mkdir()
    with pytest.raises(DatasetError, match="only datasets under"):
        sources.remove_dataset(elsewhere)
    sources.remove_dataset(folder)
    assert not folder.exists() and elsewhere.exists() and sources.active_dataset() is None


def test_default_roots_are_home_catdog_home_and_the_folder_holding_the_project(monkeypatch):
    from catdog import config

    monkeypatch.delenv("CATDOG_DATA_ROOTS", raising=False)
    roots = sources.data_roots()
    assert config.project_root().parent.resolve() in roots and config.home().resolve() in roots
    assert sources.resolve_local_folder(config.project_root()) == config.project_root().resolve()


def test_a_refused_symlink_says_where_it_leads_and_how_to_allow_it(tmp_path, monkeypatch):
    (tmp_path / "project").mkdir()
    (tmp_path / "elsewhere/data").mkdir(parents=True)
    (tmp_path / "project/shared").symlink_to(tmp_path / "elsewhere")
    monkeypatch.setenv("CATDOG_DATA_ROOTS", str(tmp_path / "project"))
    monkeypatch.chdir(tmp_path / "project")
    with pytest.raises(DatasetError) as caught:
        sources.resolve_local_folder("shared/data")
    message = str(caught.value)
    real = (tmp_path / "elsewhere/data").resolve()
    assert f"'shared/data' leads to '{real}' through a symbolic link" in message
    assert "outside the allowed folders" in message
    assert f"CATDOG_DATA_ROOTS={real}{os.pathsep}{(tmp_path / 'project').resolve()}" in message  # the defaults kept
    monkeypatch.setenv("CATDOG_DATA_ROOTS", message.rsplit("CATDOG_DATA_ROOTS=", 1)[1])  # the advice works as written
    assert sources.resolve_local_folder("shared/data") == real


def test_a_plain_path_outside_the_roots_mentions_no_symlink(tmp_path, monkeypatch):
    monkeypatch.setenv("CATDOG_DATA_ROOTS", str(tmp_path / "root"))
    with pytest.raises(DatasetError) as caught:
        sources.resolve_local_folder(tmp_path)
    assert "symbolic link" not in str(caught.value) and "CATDOG_DATA_ROOTS=" in str(caught.value)


def test_a_folder_signature_changes_when_a_photo_is_added_to_a_class_folder_and_stays_shallow(tmp_path):
    from pathlib import Path

    from catdog.sources import folder_signature
    from tests.fixtures import make_class_folders, write_image

    root = make_class_folders(tmp_path / "photos" / "train", n=2).parent
    before = folder_signature([root])
    assert [Path(p).relative_to(root).as_posix() for p, _ in before] == [".", "train", "train/cats", "train/dogs"]
    write_image(root / "train" / "dogs" / "new.jpg", seed=7)
    os.utime(root / "train" / "dogs", ns=(0, (root / "train" / "dogs").stat().st_mtime_ns + 10**9))
    assert folder_signature([root]) != before
    (root / "train" / "dogs" / "deeper" / "still").mkdir(parents=True)  # below a class folder: not listed
    assert len(folder_signature([root])) == 4
    assert len(folder_signature([root], limit=2)) == 2
