"""The one file hasher: sha256 of a file's bytes (pins models in records, caches and evaluations)."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path


def file_sha256(path: str | os.PathLike) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_file_sha256(path: str | os.PathLike) -> str:
    """`file_sha256`, remembered by path, size and modification time (listing pages hash the same models on every rerun)."""
    stat = Path(path).stat()
    return _cached(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _cached(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)
