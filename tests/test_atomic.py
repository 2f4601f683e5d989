"""catdog.atomic: one temp-then-rename for every file and folder catdog writes."""

from __future__ import annotations

import json
import os
import stat

import pytest

from catdog.atomic import atomic_directory, atomic_path, atomic_write_json


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.json"
    atomic_write_json(target, {"old": True})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_temporary_keeps_the_suffix_and_is_unique(tmp_path):
    with atomic_path(tmp_path / "m.keras") as one, atomic_path(tmp_path / "m.keras") as two:
        assert one.suffix == two.suffix == ".keras" and one != two and one.name.startswith(".tmp-")
        one.write_bytes(b"1")
        two.write_bytes(b"2")
    assert (tmp_path / "m.keras").read_bytes() == b"1"  # the outer one finished last


def test_explicit_mode_is_applied(tmp_path):
    atomic_write_json(tmp_path / "secret.json", {"key": "x"}, mode=0o600)
    assert stat.S_IMODE(os.stat(tmp_path / "secret.json").st_mode) == 0o600


def test_directory_appears_whole_or_not_at_all(tmp_path):
    with pytest.raises(OSError):
        with atomic_directory(tmp_path / "data") as tmp:
            (tmp / "a.txt").write_text("a")
            raise OSError(28, "No space left on device")
    assert list(tmp_path.iterdir()) == []
    with atomic_directory(tmp_path / "data") as tmp:
        (tmp / "a.txt").write_text("a")
    assert (tmp_path / "data" / "a.txt").read_text() == "a"
