"""Backbone features of photos, computed once and cached by the photo's sha256 and the backbone's.

A frozen backbone (the `lite0` preset) gives each photo the same features in every
training, so they are computed once: the file's bytes are hashed, and the 1280
features are kept under `CATDOG_HOME/cache/features/<backbone key>/<sha[:2]>/<sha>.npy`.
The backbone key pins the weights file's sha256, the input size and the
preprocessing version (`catdog.preprocess.PREPROCESS_VERSION`), so a change to any
of them never reuses stale features. A second training on the same photos decodes
nothing and runs no network: it reads 5 KB per photo.

Decoding goes through the one preprocessing path (`catdog.preprocess.load_array`),
so these are the features the saved model computes for the same file at prediction time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from catdog import config
from catdog.errors import ImageError

log = logging.getLogger(__name__)

BATCH = 32
# progress(done, total, seconds left or None), called after every batch.
Progress = Callable[[int, int, "float | None"], None]


@dataclass
class FeatureSet:
    """Features of the photos that could be read, their labels and paths, and the files skipped."""

    features: np.ndarray  # float32 (n, d)
    labels: np.ndarray  # int32 (n,)
    paths: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    from_cache: int = 0
    digests: list[str] = field(default_factory=list)  # each photo's sha256, in the order of `paths`

    def __len__(self) -> int:
        return len(self.paths)


def backbone_key(weights_sha256: str, image_size: int, extra: str = "") -> str:
    """The cache key of a frozen backbone: its weights, input size and the preprocessing version."""
    from catdog.preprocess import PREPROCESS_VERSION

    text = f"{weights_sha256}|{image_size}|{PREPROCESS_VERSION}|{extra}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cache_root(key: str) -> Path:
    return config.cache_dir() / "features" / key


class FeatureExtractor:
    """`model(uint8 images) -> features`, compiled once; the backbone part of a Keras model up to `layer`."""

    def __init__(self, model, layer: str, key: str):
        import keras
        import tensorflow as tf

        self.image_size = int(model.input_shape[1])
        self.key = key
        sub = keras.Model(model.input, model.get_layer(layer).output)
        self._fn = tf.function(lambda x: sub(x, training=False), reduce_retracing=True)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self._fn(np.asarray(images, np.float32)), np.float32)


def extract(
    paths: Sequence[str | os.PathLike],
    labels: Sequence[int],
    extractor: FeatureExtractor,
    progress: Progress | None = None,
    use_cache: bool = True,
) -> FeatureSet:
    """Features of each file (from the cache where it has them), skipping files that cannot be read.

    Args:
        paths, labels: the photos and their integer labels.
        extractor: the backbone (`FeatureExtractor`).
        progress: told (done, total, seconds left) as photos are done.
        use_cache: read and write the on-disk cache.
    """
    from catdog.preprocess import load_array, read_bytes

    root = cache_root(extractor.key)
    n = len(paths)
    out: list[np.ndarray | None] = [None] * n
    errors: dict[int, str] = {}
    digests: list[str | None] = [None] * n

    def look_up(i: int) -> None:
        try:
            data = read_bytes(paths[i])
        except ImageError as exc:
            errors[i] = str(exc)
            return
        digest = hashlib.sha256(data).hexdigest()
        digests[i] = digest
        if use_cache:
            out[i] = _read_cached(root, digest)

    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(look_up, range(n)))
    hits = sum(v is not None for v in out)
    missing = [i for i in range(n) if out[i] is None and i not in errors]
    start, done = time.time(), hits
    if progress is not None:
        progress(done, n, None)

    def decode(i: int):
        try:
            return load_array(paths[i], extractor.image_size)
        except ImageError as exc:
            return str(exc)

    with ThreadPoolExecutor(workers) as pool:
        for b in range(0, len(missing), BATCH):
            batch = missing[b : b + BATCH]
            decoded = list(pool.map(decode, batch))
            good = [(i, a) for i, a in zip(batch, decoded) if not isinstance(a, str)]
            for i, a in zip(batch, decoded):
                if isinstance(a, str):
                    errors[i] = a
            if good:
                feats = extractor(np.stack([a for _, a in good]))
                for (i, _), f in zip(good, feats):
                    out[i] = f
                    if use_cache:
                        _write_cached(root, digests[i], f)
            done += len(batch)
            if progress is not None:
                rate = (done - hits) / max(time.time() - start, 1e-6)
                progress(done, n, (n - done) / rate if rate > 0 else None)
    ok = [i for i in range(n) if out[i] is not None]
    dim = len(out[ok[0]]) if ok else 0
    features = np.stack([out[i] for i in ok]).astype(np.float32) if ok else np.zeros((0, dim), np.float32)
    return FeatureSet(features, np.asarray([labels[i] for i in ok], np.int32), [Path(paths[i]) for i in ok],
                      [(Path(paths[i]), errors[i]) for i in sorted(errors)], from_cache=hits, digests=[digests[i] for i in ok])


def _cached_path(root: Path, digest: str) -> Path:
    return root / digest[:2] / f"{digest}.npy"


def _read_cached(root: Path, digest: str) -> np.ndarray | None:
    path = _cached_path(root, digest)
    try:
        if path.stat().st_size > 64 * 1024:  # 1280 float32 values are 5 KB; anything larger is not ours
            return None
        value = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if value.ndim != 1 or value.dtype != np.float32 or not np.all(np.isfinite(value)):
        return None  # a damaged entry is recomputed, never trusted
    return value


def _write_cached(root: Path, digest: str, value: np.ndarray) -> None:
    import io

    from catdog.atomic import atomic_write_bytes

    path = _cached_path(root, digest)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.save(buf, np.asarray(value, np.float32), allow_pickle=False)
        atomic_write_bytes(path, buf.getvalue())
    except OSError as exc:  # a full disk costs the cache, not the training
        log.warning("could not cache features in %s: %s", path.parent, exc)
