"""Where datasets come from on this server: allowed local folders, uploads, the active dataset.

Local folders are for the desktop use case. When the app is served to other people,
set CATDOG_ALLOW_LOCAL_FOLDERS=0 (or list only safe roots in CATDOG_DATA_ROOTS) so a
visitor cannot point catdog at arbitrary server paths.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Sequence

from catdog import config
from catdog.archive import UnpackBudget, extract_zip
from catdog.atomic import atomic_directory, atomic_write_json
from catdog.errors import DatasetError

ACTIVE_FILE = "active_dataset.json"


def local_folders_allowed() -> bool:
    """False when CATDOG_ALLOW_LOCAL_FOLDERS is 0/false/no/off, True when unset or 1/true/yes/on.

    Raises:
        CatdogError: any other value (a typo must not open the server's folders).
    """
    return config.env_flag("CATDOG_ALLOW_LOCAL_FOLDERS", True)


def data_roots() -> list[Path]:
    """Allowed roots: CATDOG_DATA_ROOTS (os.pathsep-separated), else the home folder, CATDOG_HOME,
    and the folder that holds the project (where a checkout keeps its sample data beside it)."""
    raw = os.environ.get("CATDOG_DATA_ROOTS", "")
    defaults = [Path.home(), config.home(), config.project_root().parent]
    roots = [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()] or defaults
    return [r.resolve() for r in roots]


def resolve_local_folder(path: str | os.PathLike) -> Path:
    """The one rule for a server path that comes from the browser; `..` and symlinks are resolved first.

    Allowed: a folder inside CATDOG_HOME/datasets (what uploads and Kaggle
    downloads make), or, unless CATDOG_ALLOW_LOCAL_FOLDERS=0, inside one of
    `data_roots()`. Files and class folders inside it are read only where they
    resolve inside it too (see `catdog.data.discover`).

    Raises:
        DatasetError: local folders are off, the path is outside every root, or not a folder.
    """
    folder = Path(path).expanduser().resolve()  # follows symlinks, so a link cannot escape a root
    if not is_within(folder, config.datasets_dir().resolve()):
        if not local_folders_allowed():
            raise DatasetError("local folders are turned off on this server (CATDOG_ALLOW_LOCAL_FOLDERS=0); "
                               "upload a zip or a folder on the Data page instead")
        roots = data_roots()
        if not any(is_within(folder, r) for r in roots):
            raise DatasetError(outside_roots_message(path, folder, roots))
    if not folder.is_dir():
        raise DatasetError(f"{str(path)!r} does not exist or is not a folder on this server")
    return folder


def outside_roots_message(path: str | os.PathLike, folder: Path, roots: list[Path]) -> str:
    """Why `path` is refused: where it really leads (a symlink on the way) and the CATDOG_DATA_ROOTS that allows it.

    Args:
        path: the path as typed.
        folder: where it resolves to.
        roots: the allowed roots (`data_roots()`).
    """
    typed = Path(os.path.abspath(Path(path).expanduser()))  # `..` removed, symlinks kept: what the user thinks it is
    linked = typed != folder
    where = f"{str(path)!r} leads to {str(folder)!r} through a symbolic link, and that is" if linked else f"{str(path)!r} is"
    rule = " A symbolic link may not lead out of them." if linked else ""
    # CATDOG_DATA_ROOTS replaces the default roots, so the line to copy keeps them.
    allow = os.pathsep.join(map(str, [folder, *roots]))
    return (f"{where} outside the allowed folders ({', '.join(map(str, roots))}).{rule} "
            f"To allow it, start the app with CATDOG_DATA_ROOTS={allow}")


def is_within(path: Path, root: Path) -> bool:
    """Whether the (already resolved) `path` is `root` or inside it."""
    return path == root or root in path.parents


def import_zip(source, name: str, refused: list[tuple[str, str]] | None = None, budget: UnpackBudget | None = None) -> Path:
    """Extract an uploaded zip (path or file object) safely into CATDOG_HOME/datasets/<name>.

    A zip made by "compress folder" holds one top folder (photos/cats, photos/dogs):
    that folder is unwrapped, so the dataset starts at the class folders.

    Args:
        source: the zip file path or a binary file object.
        name: the upload's file name (the dataset folder is named after it).
        refused: if given, entries that cannot be files here (a file and a
            folder of the same name, too long or deep a path) are skipped and
            listed with the reason; otherwise the first one refuses the zip.
        budget: what this session may still unpack (the Data page keeps one per session).
    """
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(name).stem).strip(".-") or "upload"
    dest = extract_zip(source, _free_dest(safe), refused=refused, budget=budget)
    unwrap_single_folder(dest)
    return dest


IGNORED_NAMES = ("__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini")


def unwrap_single_folder(folder: Path) -> Path:
    """Move the contents of a lone top folder (that holds folders) up into `folder`; drop macOS/Windows litter.

    A lone folder of images (one class) is left as it is.
    """
    for name in IGNORED_NAMES:
        junk = folder / name
        if junk.is_dir():
            shutil.rmtree(junk)
        elif junk.exists():
            junk.unlink()
    while True:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
        if len(entries) != 1 or not entries[0].is_dir() or not any(p.is_dir() for p in entries[0].iterdir()):
            return folder
        inner = entries[0].rename(folder.parent / f".{folder.name}.unwrap")
        for hidden in folder.iterdir():  # only hidden leftovers remain
            shutil.rmtree(hidden) if hidden.is_dir() else hidden.unlink()
        folder.rmdir()
        inner.rename(folder)


def remove_dataset(path: str | os.PathLike) -> None:
    """Delete a dataset folder that catdog made (under CATDOG_HOME/datasets); anything else is refused.

    Raises:
        DatasetError: the folder is not directly under CATDOG_HOME/datasets.
    """
    folder = Path(path).expanduser().resolve()
    parent = config.datasets_dir().resolve()
    if folder.parent != parent or not folder.is_dir():
        raise DatasetError(f"only datasets under {str(parent)!r} can be removed here, not {str(path)!r}")
    if active_dataset() == folder:
        (config.home() / ACTIVE_FILE).unlink(missing_ok=True)
    shutil.rmtree(folder)


def import_files(files: list[tuple[str, bytes]], name: str, refused: list[tuple[str, str]] | None = None) -> Path:
    """Store uploaded files (relative name, bytes), e.g. a folder upload, into a new dataset folder.

    Args:
        files: (relative name, content) pairs.
        name: the dataset folder's name under CATDOG_HOME/datasets.
        refused: if given, names that cannot be stored (empty, `.`, a NUL byte,
            a part over 255 bytes, a file/folder clash, a duplicate) are
            skipped and listed here with the reason; otherwise the first one
            refuses the upload.

    Raises:
        ArchiveError: a name points outside the folder (`..`, absolute): the whole upload is refused.
        DatasetError: no file could be stored.
    """
    from catdog.archive import _check_name

    dest = _free_dest(name)
    for rel, _content in files:
        _check_name(rel)
    stored, skipped = 0, []
    with atomic_directory(dest) as tmp:
        for rel, content in files:
            reason = _bad_upload_name(rel) or _store(tmp, rel, content)
            if reason is None:
                stored += 1
                continue
            if refused is None:
                raise DatasetError(f"cannot store uploaded file {rel!r}: {reason}")
            skipped.append((rel, reason))
        if not stored:
            raise DatasetError(f"none of the {len(files)} uploaded files could be stored" + (f" ({skipped[0][1]})" if skipped else ""))
    if refused is not None:
        refused.extend(skipped)
    return dest


def _bad_upload_name(rel: str) -> str | None:
    """Why an uploaded file's relative name cannot be a file in the dataset, or None."""
    if "\0" in rel:
        return "the name contains a NUL byte"
    parts = [p for p in rel.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts:
        return "the name is empty"
    long = next((p for p in parts if len(p.encode("utf-8", "surrogatepass")) > 255), None)
    if long is not None:
        return f"a name part is {len(long.encode('utf-8', 'surrogatepass'))} bytes long; the limit is 255"
    return None


def _store(folder: Path, rel: str, content: bytes) -> str | None:
    """Write one uploaded file under `folder`; the reason it cannot be, or None."""
    target = folder.joinpath(*[p for p in rel.replace("\\", "/").split("/") if p not in ("", ".")])
    if target.exists():
        return "a folder of the same name was uploaded too" if target.is_dir() else "another uploaded file has the same name"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as fh:
            fh.write(content)
    except (FileExistsError, NotADirectoryError):
        return "a file and a folder of the same name were uploaded"
    except (OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise
        return getattr(exc, "strerror", None) or str(exc)
    return None


def _free_dest(name: str) -> Path:
    parent = config.datasets_dir()
    parent.mkdir(parents=True, exist_ok=True)
    dest, n = parent / name, 1
    while dest.exists():
        n += 1
        dest = parent / f"{name}-{n}"
    return dest


def folder_signature(folders: Sequence[str | os.PathLike], depth: int = 3, limit: int = 256) -> tuple:
    """What changes when a photo is added, removed or renamed in `folders`: the path and modification time of
    each folder down to `depth` levels (a dataset's root, split and class folders), at most `limit` of them:
    a stat per folder, not per photo, to key a page's cached report on. Check a typed path (`resolve_local_folder`)
    first: this lists what it is given."""
    signature: list[tuple] = []
    for folder in folders:
        base = str(folder).rstrip(os.sep).count(os.sep)
        for dirpath, dirnames, _files in os.walk(folder):
            dirnames[:] = sorted(dirnames) if dirpath.count(os.sep) - base < depth - 1 else []
            try:
                signature.append((dirpath, os.stat(dirpath).st_mtime_ns))
            except OSError:
                signature.append((dirpath, None))
            if len(signature) >= limit:
                return tuple(signature)
    return tuple(signature)


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


def pair_by_name(source: str | os.PathLike, classes: tuple[str, str], train_per_class: int, dest: str | os.PathLike | None = None,
                 seed: int = 0) -> Path:
    """A two-class dataset from one folder whose file names start with the class (`glass_12.jpg`, `Abyssinian_3.jpg`).

    Copies a seeded draw of `train_per_class` photos of each class into `<dest>/train/<class>/` and the
    rest into `<dest>/test/<class>/` (the photos a training validates on: they choose nothing), then makes
    it the dataset the Train page suggests.

    Args:
        source: the folder (not searched below its top level).
        classes: the two name prefixes; a file belongs to one when its name starts with it followed by
            `_`, `-`, `.` or a digit.
        train_per_class: training photos per class (at least 10; at least 5 more must be left to test on).
        dest: the new folder (default `CATDOG_HOME/datasets/<a>-vs-<b>`); it must not exist yet.

    Raises:
        DatasetError: a class with too few photos, classes that are the same, or an existing dest.
    """
    import random
    import re
    import shutil

    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"{str(source)!r} is not a folder")
    a, b = (str(c).strip() for c in classes)
    if not a or not b or a.lower() == b.lower():
        raise DatasetError(f"give two different class names, got {a!r} and {b!r}")
    if not isinstance(train_per_class, int) or train_per_class < 10:
        raise DatasetError(f"train_per_class must be an integer of at least 10, got {train_per_class!r}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in config.IMAGE_EXTENSIONS)
    picked = {}
    for name in (a, b):
        rule = re.compile(re.escape(name.lower()) + r"[_\-.0-9]")
        own = [p for p in files if rule.match(p.name.lower())]
        if len(own) < train_per_class + 5:
            raise DatasetError(f"{str(folder)!r} has {len(own)} photos named {name}_…; {train_per_class} to train on and "
                               "at least 5 to test on are needed: ask for fewer with --train-per-class")
        random.Random(f"{seed}:{name}").shuffle(own)
        picked[name] = own
    target = Path(dest).expanduser() if dest else _free_dest(f"{a}-vs-{b}")
    if target.exists():
        raise DatasetError(f"{str(target)!r} already exists; choose another --dest")
    for name, own in picked.items():
        for split, chosen in (("train", own[:train_per_class]), ("test", own[train_per_class:])):
            (target / split / name).mkdir(parents=True, exist_ok=True)
            for path in chosen:
                shutil.copy2(path, target / split / name / path.name)
    set_active_dataset(target)
    return target
