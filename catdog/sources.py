"""Where datasets come from on this server: allowed local folders, uploads, the active dataset.

Local folders are for the desktop use case. When the app is served to other people,
set CATDOG_ALLOW_LOCAL_FOLDERS=0 (or list only safe roots in CATDOG_DATA_ROOTS) so a
visitor cannot point catdog at arbitrary server paths.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from catdog import config
from catdog.archive import extract_zip
from catdog.atomic import atomic_directory, atomic_write_json
from catdog.errors import DatasetError

ACTIVE_FILE = "active_dataset.json"


def local_folders_allowed() -> bool:
    """False when CATDOG_ALLOW_LOCAL_FOLDERS is 0/false/no/off."""
    return os.environ.get("CATDOG_ALLOW_LOCAL_FOLDERS", "1").strip().lower() not in ("0", "false", "no", "off")


def data_roots() -> list[Path]:
    """Allowed roots: CATDOG_DATA_ROOTS (os.pathsep-separated), else the home folder and CATDOG_HOME."""
    raw = os.environ.get("CATDOG_DATA_ROOTS", "")
    roots = [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()] or [Path.home(), config.home()]
    return [r.resolve() for r in roots]


def resolve_local_folder(path: str | os.PathLike) -> Path:
    """Check a server path against the allow-list; `..` and symlinks are resolved first.

    Raises:
        DatasetError: local folders are off, the path is outside every root, or not a folder.
    """
    if not local_folders_allowed():
        raise DatasetError("local folders are turned off on this server (CATDOG_ALLOW_LOCAL_FOLDERS=0); upload a zip instead")
    folder = Path(path).expanduser().resolve()  # follows symlinks, so a link cannot escape a root
    roots = data_roots()
    if not any(folder == r or r in folder.parents for r in roots):
        raise DatasetError(f"{str(path)!r} is outside the allowed folders ({', '.join(map(str, roots))}); "
                           "set CATDOG_DATA_ROOTS to allow it")
    if not folder.is_dir():
        raise DatasetError(f"{str(path)!r} is not a folder on this server")
    return folder


def import_zip(source, name: str) -> Path:
    """Extract an uploaded zip (path or file object) safely into CATDOG_HOME/datasets/<name>."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(name).stem).strip(".-") or "upload"
    return extract_zip(source, _free_dest(safe))


def import_files(files: list[tuple[str, bytes]], name: str) -> Path:
    """Store uploaded files (relative name, bytes), e.g. a folder upload, into a new dataset folder."""
    from catdog.archive import _check_name

    dest = _free_dest(name)
    with atomic_directory(dest) as tmp:
        for rel, content in files:
            _check_name(rel)
            target = tmp / rel.replace("\\", "/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    return dest


def _free_dest(name: str) -> Path:
    parent = config.datasets_dir()
    parent.mkdir(parents=True, exist_ok=True)
    dest, n = parent / name, 1
    while dest.exists():
        n += 1
        dest = parent / f"{name}-{n}"
    return dest


def set_active_dataset(path: str | os.PathLike) -> Path:
    """Make a folder the dataset the Train page suggests (CATDOG_HOME/active_dataset.json)."""
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise DatasetError(f"{str(path)!r} is not a folder")
    config.home().mkdir(parents=True, exist_ok=True)
    target = config.home() / ACTIVE_FILE
    atomic_write_json(target, {"path": str(folder)})
    return folder


def list_datasets() -> list[Path]:
    """Dataset folders under CATDOG_HOME/datasets, by name (hidden and partial ones left out)."""
    parent = config.datasets_dir()
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith("."))


def suggested_dataset() -> Path | None:
    """The dataset to suggest: the Data page's choice, else the first one listed."""
    chosen = active_dataset()
    if chosen is not None:
        return chosen
    found = list_datasets()
    return found[0] if found else None


def active_dataset() -> Path | None:
    """The folder set by `set_active_dataset`, or None when unset or gone."""
    try:
        folder = Path(json.loads((config.home() / ACTIVE_FILE).read_text())["path"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return folder if folder.is_dir() else None
