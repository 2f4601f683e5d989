"""Safe zip extraction: no path escapes, no symlinks, limits against zip bombs.

Extraction goes into a temporary sibling folder that is renamed into place at the
end, so an interrupted extraction never looks like a complete dataset.

Three limits bound what a zip may cost: its entries' total size
(`MAX_TOTAL_BYTES`), its expansion ratio (`MAX_RATIO`, per entry and over the
whole archive, counted on the real bytes too, since headers can lie), and what
one session may unpack over all its uploads (`UnpackBudget`). An entry that is
safe but cannot be a file here (a file and a folder of the same name, a name
too long or too deep for the file system, a repeated name) is refused on its
own, with the reason, when the caller asks for the list.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from catdog.atomic import atomic_directory
from catdog.errors import CatdogError, write_error

MAX_TOTAL_BYTES = 20 * 1024**3  # the Kaggle dogs-vs-cats zips are about 1 GB
MAX_FILES = 200_000
MAX_RATIO = 200  # a JPEG barely compresses; a ratio this high is a bomb
RATIO_FLOOR = 10 * 1024**2  # below this much output the ratio does not matter
# What one browser session may unpack in all (CATDOG_SESSION_UNPACK_GB, see `session_unpack_bytes`): two of the largest zips.
DEFAULT_SESSION_UNPACK_GB = 40
MAX_NAME_BYTES = 255  # one part of a path (Linux, macOS, Windows)
MAX_PATH_BYTES = 1024  # a whole entry name: far above any dataset's, far below PATH_MAX with the dataset folder
MAX_DEPTH = 32


class ArchiveError(CatdogError, ValueError):
    """A zip file is unreadable, unsafe or too large."""


def session_unpack_bytes() -> int:
    """What one browser session may unpack over all its zips: CATDOG_SESSION_UNPACK_GB (GiB, default 40).

    Raises:
        CatdogError: the variable is set to anything but a number > 0.
    """
    from catdog.config import env_number

    return int(env_number("CATDOG_SESSION_UNPACK_GB", DEFAULT_SESSION_UNPACK_GB, minimum=0, above=True) * 1024**3)


class UnpackBudget:
    """The bytes one session may still unpack, over every zip it uploads (thread-safe)."""

    def __init__(self, limit: int | None = None):
        """Args: limit: bytes in all (default `session_unpack_bytes()`, which may raise CatdogError)."""
        self.limit = int(session_unpack_bytes() if limit is None else limit)
        self.used = 0
        self._lock = threading.Lock()

    @property
    def left(self) -> int:
        with self._lock:
            return max(0, self.limit - self.used)

    def charge(self, n: int) -> None:
        with self._lock:
            self.used += int(n)

    def refusal(self) -> str:
        return (f"this session has unpacked {self.used / 1e6:,.0f} MB of zips; the limit is {self.limit / 1e6:,.0f} MB "
                "per session (CATDOG_SESSION_UNPACK_GB); use the Local folder tab or `catdog download` for more")


def check_zip(zf: zipfile.ZipFile, max_total_bytes: int = MAX_TOTAL_BYTES, max_files: int = MAX_FILES,
              budget: UnpackBudget | None = None) -> list[zipfile.ZipInfo]:
    """Check every entry before anything is written; return the file entries.

    Raises:
        ArchiveError: an entry escapes the target, is a symlink, or the limits are exceeded.
    """
    infos = zf.infolist()
    files = [i for i in infos if not i.is_dir()]
    if len(files) > max_files:
        raise ArchiveError(f"zip has {len(files)} files; the limit is {max_files}")
    total = packed = 0
    for info in infos:
        _check_name(info.filename)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ArchiveError(f"zip entry {info.filename!r} is a symbolic link; links are not allowed")
        total += info.file_size
        packed += info.compress_size
        if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > RATIO_FLOOR:
            raise ArchiveError(f"zip entry {info.filename!r} expands {info.file_size // info.compress_size}x; refusing a zip bomb")
    # Many entries each under the floor add up: the ratio counts over the whole archive too.
    if total > RATIO_FLOOR and total > MAX_RATIO * max(packed, 1):
        raise ArchiveError(f"zip expands {total // max(packed, 1)}x overall ({packed / 1e6:,.1f} MB to {total / 1e6:,.0f} MB); "
                           "refusing a zip bomb")
    if total > max_total_bytes:
        raise ArchiveError(f"zip expands to {total / 1e6:.0f} MB; the limit is {max_total_bytes / 1e6:.0f} MB")
    if budget is not None and total > budget.left:
        raise ArchiveError(f"zip expands to {total / 1e6:,.0f} MB, more than is left: {budget.refusal()}")
    return files


def _check_name(name: str) -> None:
    posix = name.replace("\\", "/")
    path = PurePosixPath(posix)
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":") or ".." in path.parts:
        raise ArchiveError(f"zip entry {name!r} points outside the target folder; refusing the archive")


def name_problem(name: str) -> str | None:
    """Why a (safe) entry name cannot be a file here, or None: a part or the whole too long, too deep, empty."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts:
        return "the name is empty"
    if "\0" in name:
        return "the name contains a NUL byte"
    long = next((p for p in parts if len(p.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES), None)
    if long is not None:
        return f"a name part is {len(long.encode('utf-8', 'surrogatepass'))} bytes long; the limit is {MAX_NAME_BYTES}"
    if len(parts) > MAX_DEPTH:
        return f"the path is {len(parts)} folders deep; the limit is {MAX_DEPTH}"
    size = len("/".join(parts).encode("utf-8", "surrogatepass"))
    if size > MAX_PATH_BYTES:
        return f"the path is {size:,} bytes long; the limit is {MAX_PATH_BYTES:,}"
    return None


def extract_zip(
    source: str | os.PathLike, dest: str | os.PathLike,
    max_total_bytes: int = MAX_TOTAL_BYTES, max_files: int = MAX_FILES,
    refused: list[tuple[str, str]] | None = None, budget: UnpackBudget | None = None,
) -> Path:
    """Extract a zip into `dest` (which must not exist yet), safely and atomically.

    Args:
        source: the zip file path (or a binary file object).
        dest: the folder to create.
        max_total_bytes: refuse archives that expand to more than this.
        max_files: refuse archives with more file entries than this.
        refused: if given, entries that cannot be files here (see the module
            docstring) are skipped and listed with the reason; otherwise the
            first one refuses the archive.
        budget: what this session may still unpack; charged with the bytes written.

    Raises:
        ArchiveError: unreadable, unsafe, too large, or (without `refused`) an entry that cannot be stored.
    """
    dest = Path(dest)
    if dest.exists():
        raise ArchiveError(f"{str(dest)!r} already exists; choose another name or remove it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        zf = zipfile.ZipFile(source)
    except UnicodeDecodeError as exc:  # an entry flagged UTF-8 whose name is not: zipfile cannot list the archive
        raise ArchiveError("not a readable zip file: an entry's name is marked as UTF-8 but is not valid UTF-8 "
                           f"({exc.object[:80]!r}); zip the folder again with another tool") from exc
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ArchiveError(f"not a readable zip file ({exc}); download or export it again") from exc
    limits = _Limits(max_total_bytes, budget, _source_size(zf))
    skipped: list[tuple[str, str]] = []
    try:
        with zf, atomic_directory(dest) as tmp:
            files = check_zip(zf, max_total_bytes, max_files, budget)
            stored = _write_entries(zf, files, tmp, limits, skipped if refused is not None else None)
            if files and not stored:
                raise ArchiveError(f"none of the zip's {len(files)} files could be unpacked ({skipped[0][0]!r}: {skipped[0][1]})")
    finally:
        if budget is not None:
            budget.charge(limits.written)
    if refused is not None:
        refused.extend(skipped)
    return dest


class _Limits:
    """The running count of real bytes written, against the size, ratio and session limits."""

    def __init__(self, max_total_bytes: int, budget: UnpackBudget | None, packed: int):
        self.max_total_bytes, self.budget, self.packed, self.written = max_total_bytes, budget, packed, 0
        self.left = budget.left if budget is not None else None

    def add(self, n: int) -> None:
        self.written += n
        if self.written > self.max_total_bytes:
            raise ArchiveError(f"zip expands past the limit of {self.max_total_bytes / 1e6:.0f} MB; refusing it")
        if self.written > RATIO_FLOOR and self.written > MAX_RATIO * self.packed:
            raise ArchiveError(f"zip expands more than {MAX_RATIO}x its size ({self.packed / 1e6:,.1f} MB); refusing a zip bomb")
        if self.left is not None and self.written > self.left:
            raise ArchiveError(f"zip expands past what is left: {self.budget.refusal()}")


def _source_size(zf: zipfile.ZipFile) -> int:
    """The zip's own size in bytes (the real denominator of its expansion ratio)."""
    try:
        fp = zf.fp
        here = fp.tell()
        size = fp.seek(0, os.SEEK_END)
        fp.seek(here)
        return int(size)
    except (AttributeError, OSError, ValueError):
        return sum(i.compress_size for i in zf.infolist())


def _write_entries(zf: zipfile.ZipFile, files: list[zipfile.ZipInfo], root: Path, limits: _Limits,
                   refused: list[tuple[str, str]] | None) -> int:
    """Write the file entries; return how many were stored."""
    stored = 0
    for info in files:
        reason = name_problem(info.filename) or _write_entry(zf, info, root, limits)
        if reason is None:
            stored += 1
        elif refused is None:
            raise ArchiveError(f"zip entry {info.filename!r} cannot be unpacked: {reason}")
        else:
            refused.append((info.filename, reason))
    return stored


def _write_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, root: Path, limits: _Limits) -> str | None:
    """Write one entry (never over another); why it cannot be, or None."""
    target = root.joinpath(*[p for p in info.filename.replace("\\", "/").split("/") if p not in ("", ".")])
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(info) as src, open(target, "xb") as dst:
            while chunk := src.read(1 << 20):  # count real bytes: the sizes in the header can lie
                limits.add(len(chunk))
                dst.write(chunk)
    except (FileExistsError, IsADirectoryError) as exc:
        if target.is_dir():
            return "a folder of the same name is in the zip too"
        if exc.filename and Path(exc.filename) != target:
            return "a file of the same name as one of its folders is in the zip too"
        return "another entry of the same name is in the zip"
    except NotADirectoryError:
        return "a file of the same name as one of its folders is in the zip too"
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        target.unlink(missing_ok=True)
        raise ArchiveError(f"zip entry {info.filename!r} is corrupt ({exc}); download it again") from exc
    except OSError as exc:
        clear = write_error(exc, target.parent, "then import the zip again", cls=ArchiveError)
        if clear is not None:
            raise clear from exc
        if exc.errno != errno.ENAMETOOLONG:
            raise
        return "the path is too long for this file system"
    return None
