"""Safe zip extraction: zip slip, absolute paths, symlinks, bombs, atomic result."""

from __future__ import annotations

import stat
import zipfile

import pytest

from catdog.archive import ArchiveError, extract_zip


def _zip(path, entries):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


def test_good_zip_is_extracted_into_dest(tmp_path):
    src = _zip(tmp_path / "a.zip", [("train/cats/cat.1.jpg", b"x"), ("train/dogs/dog.1.jpg", b"y")])
    out = extract_zip(src, tmp_path / "ds")
    assert (out / "train/cats/cat.1.jpg").read_bytes() == b"x"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "/etc/evil.txt", "C:/evil.txt", "..\\evil.txt"])
def test_entries_escaping_the_target_are_rejected(tmp_path, name):
    src = _zip(tmp_path / "a.zip", [("ok.txt", b"1"), (name, b"bad")])
    with pytest.raises(ArchiveError, match="outside the target"):
        extract_zip(src, tmp_path / "sub" / "ds")
    assert not (tmp_path / "sub" / "ds").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_symlink_entry_is_rejected(tmp_path):
    src = tmp_path / "a.zip"
    with zipfile.ZipFile(src, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ArchiveError, match="symbolic link"):
        extract_zip(src, tmp_path / "ds")


def test_zip_bomb_over_size_limit_is_rejected_and_leaves_nothing(tmp_path):
    src = _zip(tmp_path / "a.zip", [("big.bin", b"\0" * 200_000)])
    with pytest.raises(ArchiveError, match="limit"):
        extract_zip(src, tmp_path / "ds", max_total_bytes=100_000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]


def test_too_many_files_is_rejected(tmp_path):
    src = _zip(tmp_path / "a.zip", [(f"f{i}.txt", b"1") for i in range(11)])
    with pytest.raises(ArchiveError, match="11 files"):
        extract_zip(src, tmp_path / "ds", max_files=10)


def test_not_a_zip_gives_clear_error(tmp_path):
    src = tmp_path / "a.zip"
    src.write_bytes(b"hello")
    with pytest.raises(ArchiveError, match="not a readable zip"):
        extract_zip(src, tmp_path / "ds")


def test_existing_dest_is_not_overwritten(tmp_path):
    src = _zip(tmp_path / "a.zip", [("x.txt", b"1")])
    (tmp_path / "ds").mkdir()
    with pytest.raises(ArchiveError, match="already exists"):
        extract_zip(src, tmp_path / "ds")
