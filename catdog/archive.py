"""Safe zip extraction: no path escapes, no symlinks, limits against zip bombs.

Extraction goes into a temporary sibling folder that is renamed into place at the
end, so an interrupted extraction never looks like a complete dataset.
"""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from catdog.atomic import atomic_directory
from catdog.errors import CatdogError

MAX_TOTAL_BYTES = 20 * 1024**3  # the Kaggle dogs-vs-cats zips are about 1 GB
MAX_FILES = 200_000
MAX_RATIO = 200  # a JPEG barely compresses; a ratio this high is a bomb


class ArchiveError(CatdogError, ValueError):
    """A zip file is unreadable, unsafe or too large."""


def check_zip(zf: zipfile.ZipFile, max_total_bytes: int = MAX_TOTAL_BYTES, max_files: int = MAX_FILES) -> list[zipfile.ZipInfo]:
    """Check every entry before anything is written; return the file entries.

    Raises:
        ArchiveError: an entry escapes the target, is a symlink, or the limits are exceeded.
    """
    infos = zf.infolist()
    files = [i for i in infos if not i.is_dir()]
    if len(files) > max_files:
        raise ArchiveError(f"zip has {len(files)} files; the limit is {max_files}")
    total = 0
    for info in infos:
        _check_name(info.filename)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ArchiveError(f"zip entry {info.filename!r} is a symbolic link; links are not allowed")
        total += info.file_size
        if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > 10 * 1024**2:
            raise ArchiveError(f"zip entry {info.filename!r} expands {info.file_size // info.compress_size}x; refusing a zip bomb")
    if total > max_total_bytes:
        raise ArchiveError(f"zip expands to {total / 1e6:.0f} MB; the limit is {max_total_bytes / 1e6:.0f} MB")
    return files


def _check_name(name: str) -> None:
    posix = name.replace("\\", "/")
    path = PurePosixPath(posix)
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":") or ".." in path.parts:
        raise ArchiveError(f"zip entry {name!r} points outside the target folder; refusing the archive")


def extract_zip(
    source: str | os.PathLike, dest: str | os.PathLike,
    max_total_bytes: int = MAX_TOTAL_BYTES, max_files: int = MAX_FILES,
) -> Path:
    """Extract a zip into `dest` (which must not exist yet), safely and atomically.

    Args:
        source: the zip file path (or a binary file object).
        dest: the folder to create.
        max_total_bytes: refuse archives that expand to more than this.
        max_files: refuse archives with more file entries than this.
    """
    dest = Path(dest)
    if dest.exists():
        raise ArchiveError(f"{str(dest)!r} already exists; choose another name or remove it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"not a readable zip file ({exc}); download or export it again") from exc
    with zf, atomic_directory(dest) as tmp:
        files = check_zip(zf, max_total_bytes, max_files)
        _write_entries(zf, files, tmp, max_total_bytes)
    return dest


def _write_entries(zf: zipfile.ZipFile, files: list[zipfile.ZipInfo], root: Path, limit: int) -> None:
    written = 0
    for info in files:
        target = root / PurePosixPath(info.filename.replace("\\", "/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with zf.open(info) as src, open(target, "wb") as dst:
                # Count real bytes: the sizes in the header can lie.
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > limit:
                        raise ArchiveError(f"zip expands past the limit of {limit / 1e6:.0f} MB; refusing it")
                    dst.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise ArchiveError(f"zip entry {info.filename!r} is corrupt ({exc}); download it again") from exc

