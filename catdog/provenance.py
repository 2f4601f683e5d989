"""What a model was trained on, compactly: the photos' sha256 prefixes, beside the model (`trained_on.npy`).

A warm start compares its photos with its starting model's: photos the starting
model already trained on would make "before -> after" meaningless (the starting
model scores them as if they were new), so the training says so before it starts.
Eight bytes of each photo's sha256 (sorted uint64) tell photos apart with a
chance of a false match of about n^2 / 2^64: nil for any real collection.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

FILENAME = "trained_on.npy"
MAX_BYTES = 64 * 1024 * 1024  # 8 M photos; a larger file is not ours


def fingerprints(digests: Iterable[str]) -> np.ndarray:
    """Sorted, unique uint64 prefixes of hex sha256 digests."""
    return np.unique(np.array([int(d[:16], 16) for d in digests], dtype=np.uint64))


def file_fingerprints(paths: Sequence[str | os.PathLike]) -> np.ndarray:
    """`fingerprints` of files' bytes (unreadable files are left out)."""
    digests = []
    for path in paths:
        try:
            digests.append(hashlib.sha256(Path(path).read_bytes()).hexdigest())
        except OSError:
            continue
    return fingerprints(digests)


def save(model_dir: str | os.PathLike, prints: np.ndarray) -> Path:
    from catdog.atomic import atomic_write_bytes

    path = Path(model_dir) / FILENAME
    buf = io.BytesIO()
    np.save(buf, np.asarray(prints, np.uint64), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load(model_dir: str | os.PathLike) -> np.ndarray | None:
    """The model's training fingerprints, or None when it has none (or the file is not a plain uint64 vector)."""
    path = Path(model_dir) / FILENAME
    try:
        if path.stat().st_size > MAX_BYTES:
            return None
        value = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    return value if value.ndim == 1 and value.dtype == np.uint64 else None


def overlap(prints: np.ndarray, other: np.ndarray | None) -> int:
    """How many of `prints` are in `other`."""
    if other is None or not len(prints):
        return 0
    return int(np.isin(prints, other, assume_unique=True).sum())


def shared_with(model_dir: str | os.PathLike, paths: Sequence[str | os.PathLike]) -> tuple[int, int] | None:
    """(how many of `paths` the model at `model_dir` trained on, how many were read); None when it records nothing."""
    prints = load(model_dir)
    if prints is None:
        return None
    mine = file_fingerprints(paths)
    return overlap(mine, prints), len(mine)
