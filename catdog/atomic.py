"""Atomic writes: a reader sees the old file (or folder) or the new one, never half of one.

Every write goes to a uniquely named temporary in the target's own folder (so
two processes never share one, and the rename stays on one file system), is
flushed to disk with fsync, and replaces the target with `os.replace`. A
failure removes the temporary. Temporaries are named `.tmp-<name>-<random>`,
so leftovers of a killed process can be found with `rglob(".tmp-*")`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

TEMP_PREFIX = ".tmp-"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give; mkstemp alone gives 0o600


@contextmanager
def atomic_path(path: str | os.PathLike, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`.

    The temporary keeps `path`'s suffix, for writers that choose the format by
    it (Keras' `.keras`, matplotlib's `.png`).

    Args:
        path: the target file.
        mode: its permission bits (default: what `open()` would give under the umask).
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}-", suffix=path.suffix)
    tmp = Path(name)
    try:
        os.fchmod(fd, FILE_MODE if mode is None else mode)
        os.close(fd)
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, mode: int | None = None) -> None:
    """Write `data` to `path` atomically (see the module docstring)."""
    with atomic_path(path, mode) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str, mode: int | None = None) -> None:
    """Write `text` as UTF-8 to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def atomic_write_json(path: str | os.PathLike, data: Any, mode: int | None = None) -> None:
    """Write `data` as indented JSON to `path` atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n", mode)


@contextmanager
def atomic_directory(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside `dest` to fill; on success it becomes `dest`.

    Raises:
        FileExistsError: `dest` exists (and is not an empty folder) when the filling is done.
    """
    dest = Path(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{dest.name}-", dir=dest.parent))
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_model_atomic(model, path: str | os.PathLike, include_optimizer: bool = True) -> Path:
    """Save a Keras model so that readers see the old file or the new one.

    Args:
        model: the model.
        path: the target `.keras` file.
        include_optimizer: keep Adam's state (needed to resume; it doubles
            the file size, so the final model and best checkpoint leave it out).
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        (model if include_optimizer else _inference_copy(model)).save(tmp)
    return path


def _inference_copy(model):
    """The same architecture and weights, with no optimizer attached."""
    import keras

    # clone_model would compile the copy with the same optimizer; from_config does not.
    copy = keras.Model.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy
