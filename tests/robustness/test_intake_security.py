"""Hostile archives, escaping folder paths and leaking Kaggle keys, through the intake paths."""

from __future__ import annotations

import io
import os
import stat
import zipfile

import pytest

from catdog import kaggle, sources
from catdog.archive import ArchiveError
from catdog.errors import CatdogError
from tests.fixtures import image_bytes

FAKE_KEY = "0123456789abcdef0123456789abcdef"


def _zip(entries) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return buf.getvalue()


def _symlink_entry(name: str, target: str):
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target


HOSTILE_ZIPS = {
    "zip-slip": [("cats/a.jpg", image_bytes()), ("../../escaped.txt", b"owned")],
    "absolute-path": [("cats/a.jpg", image_bytes()), ("/tmp/catdog-escaped.txt", b"owned")],
    "symlink-entry": [("cats/a.jpg", image_bytes()), _symlink_entry("dogs/link.jpg", "/etc/passwd")],
    "zip-bomb": [("cats/bomb.jpg", b"\0" * (60 * 1024 * 1024))],
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_ZIPS))
def test_hostile_uploaded_zip_is_refused_and_writes_nothing(kind, tmp_path, monkeypatch, stats):
    monkeypatch.setenv("CATDOG_HOME", str(tmp_path / "home"))
    payload = _zip(HOSTILE_ZIPS[kind])
    stats.fault()
    with pytest.raises(ArchiveError) as info:
        sources.import_zip(io.BytesIO(payload), f"{kind}.zip")
    assert "Traceback" not in str(info.value) and len(str(info.value)) > 20
    datasets = tmp_path / "home" / "datasets"
    left = [p for p in datasets.rglob("*")] if datasets.exists() else []
    assert left == [], f"{kind}: extraction left {left}"
    assert not (tmp_path / "escaped.txt").exists() and not os.path.exists("/tmp/catdog-escaped.txt")
    stats.input(ok=False)


def test_too_many_files_is_refused(tmp_path, stats):
    payload = _zip([(f"cats/{i}.jpg", b"x") for i in range(50)])
    stats.fault()
    with pytest.raises(ArchiveError, match="files|entries"):
        from catdog.archive import extract_zip

        extract_zip(io.BytesIO(payload), tmp_path / "out", max_files=10)
    assert not (tmp_path / "out").exists()
    stats.input(ok=False)


def test_local_folder_cannot_escape_the_allowed_root(tmp_path, monkeypatch, stats):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "ok").mkdir(parents=True)
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    monkeypatch.setenv("CATDOG_DATA_ROOTS", str(root))
    monkeypatch.delenv("CATDOG_ALLOW_LOCAL_FOLDERS", raising=False)
    assert sources.resolve_local_folder(root / "ok") == (root / "ok").resolve()
    for attempt in (root / ".." / "outside", root / "link", "/etc", root / "ok" / ".." / ".." / "outside"):
        stats.fault()
        with pytest.raises(CatdogError, match="outside the allowed folders"):
            sources.resolve_local_folder(attempt)
        stats.input(ok=False)
    monkeypatch.setenv("CATDOG_ALLOW_LOCAL_FOLDERS", "0")
    with pytest.raises(CatdogError, match="turned off"):
        sources.resolve_local_folder(root / "ok")


class _LeakyResponse:
    def __init__(self, status: int):
        self.status_code = status


class _LeakyError(Exception):
    """An HTTP error whose text carries the key, as a careless client might produce."""

    def __init__(self, status: int):
        super().__init__(f"GET https://user:{FAKE_KEY}@www.kaggle.com/api -> {status}")
        self.response = _LeakyResponse(status)


class _LeakyClient:
    def __init__(self, exc: BaseException):
        self.exc = exc

    def dataset_download_files(self, *args, **kwargs):
        raise self.exc

    def competition_download_files(self, *args, **kwargs):
        raise self.exc


@pytest.mark.parametrize(
    "exc", [_LeakyError(401), _LeakyError(403), _LeakyError(404), ConnectionError(f"key={FAKE_KEY}"), RuntimeError(FAKE_KEY)]
)
def test_kaggle_errors_never_carry_the_key(exc, tmp_path, stats):
    log = io.StringIO()
    stats.fault()
    with pytest.raises(kaggle.KaggleError) as info:
        kaggle.download("salader/dogs-vs-cats", dest=tmp_path / "ds", client=_LeakyClient(exc), log=log)
    assert FAKE_KEY not in str(info.value) and FAKE_KEY not in log.getvalue()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert FAKE_KEY.encode() not in path.read_bytes()
    stats.input(ok=False)


def test_bad_kaggle_json_upload_message_does_not_echo_the_key(tmp_path, stats):
    bad = ('{"username": "someone", "key": "' + FAKE_KEY + '"').encode()  # truncated JSON
    with pytest.raises(kaggle.KaggleError) as info:
        kaggle.save_kaggle_json(bad, tmp_path)
    assert FAKE_KEY not in str(info.value)
    good = kaggle.save_kaggle_json(('{"username": "someone", "key": "' + FAKE_KEY + '"}').encode(), tmp_path)
    assert stat.S_IMODE(good.stat().st_mode) == 0o600
    env = {"KAGGLE_CONFIG_DIR": str(tmp_path)}
    assert FAKE_KEY not in (kaggle.credential_source(env) or "")
