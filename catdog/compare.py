"""A run against another model on the same photos: the run's own validation photos.

A run's validation accuracy comes from a few dozen photos; the bundled model's
figure from 1,999 others. Setting one against the other says little, so "Use this
model for Predict" compares both models on the run's validation photos instead:
the starting model's figure is recorded before the first epoch (config.json's
`before`), any other model is scored here, once, and the result cached in the run folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from catdog.atomic import atomic_write_json
from catdog.errors import CatdogError
from catdog.runs import Run, number, read_json

VALIDATION_FILE = "validation.json"  # the run's validation photos: {"paths": [...], "labels": [...]}
COMPARISONS_FILE = "comparisons.json"  # {model sha256: {"accuracy": a, "n": n, "model": path}}


@dataclass
class SamePhotos:
    """Two models' accuracy on the same validation photos of a run."""

    current: float
    new: float
    n: int


def write_validation_photos(run: Run, paths, labels) -> None:
    """Record which photos a run validated on (written by the training)."""
    atomic_write_json(run.path / VALIDATION_FILE, {"paths": [str(p) for p in paths], "labels": [int(v) for v in labels]})


def validation_photos(run: Run):
    """The run's validation photos as an ImageSet (None when not recorded or gone)."""
    from catdog import data

    record = read_json(run.path / VALIDATION_FILE)
    if not isinstance(record, dict) or not record.get("paths") or len(record["paths"]) != len(record.get("labels") or []):
        return None
    if not all(Path(p).exists() for p in record["paths"]):
        return None
    return data.ImageSet(list(record["paths"]), [int(v) for v in record["labels"]])


def _before(cfg: dict) -> dict:
    """config.json's `before` record (the starting model scored before the first epoch), or {}."""
    return cfg.get("before") if isinstance(cfg.get("before"), dict) else {}


def before_after(run: Run) -> tuple[float, float, int] | None:
    """(starting model's, saved model's validation accuracy, photos) for a warm start that recorded `before`."""
    cfg = run.config()
    before = _before(cfg)
    start, after = number(before.get("val_accuracy")), run.model_val_accuracy()
    if start is None or after is None:
        return None
    return float(start), after, int(number(before.get("n")) or number(cfg.get("n_validation")) or 0)


def before_after_text(run: Run) -> str | None:
    """'83.3% before training → 91.7% after, on 60 validation photos' (None without a recorded `before`)."""
    figures = before_after(run)
    if figures is None:
        return None
    start, after, n = figures
    on = f", on {n:,} validation photos" if n else ""
    return f"{start:.1%} before training → {after:.1%} after{on}"


def _same_file(a, b) -> bool:
    try:
        return Path(str(a)).resolve() == Path(str(b)).resolve()
    except (OSError, TypeError):
        return False


def same_photos(run: Run, model_file: Path, measure: bool = False) -> SamePhotos | None:
    """`model_file` and the run's saved model on the run's validation photos.

    The starting model's figure comes from `before`; another model's from
    comparisons.json, or, with `measure`, from scoring it now (TensorFlow, a few
    seconds) and caching the result. None when no comparison is possible.
    """
    new = run.model_val_accuracy()
    if new is None:
        return None
    cfg = run.config()
    before = _before(cfg)
    if before.get("model") and _same_file(before["model"], model_file) and number(before.get("val_accuracy")) is not None:
        return SamePhotos(float(before["val_accuracy"]), new, int(number(before.get("n")) or 0))
    from catdog.hashing import cached_file_sha256

    key = cached_file_sha256(model_file)
    cached = (read_json(run.path / COMPARISONS_FILE, {}) or {}).get(key)
    if isinstance(cached, dict) and number(cached.get("accuracy")) is not None:
        return SamePhotos(float(cached["accuracy"]), new, int(number(cached.get("n")) or 0))
    if not measure:
        return None
    images = validation_photos(run)
    if images is None:
        return None
    try:
        accuracy = _accuracy(model_file, images)
    except (CatdogError, OSError, ValueError):
        return None  # a model that cannot be loaded now: no comparison rather than an error
    record = dict(read_json(run.path / COMPARISONS_FILE, {}) or {})
    record[key] = {"accuracy": round(accuracy, 6), "n": len(images), "model": str(model_file)}
    atomic_write_json(run.path / COMPARISONS_FILE, record)
    return SamePhotos(accuracy, new, len(images))


def _accuracy(model_file: Path, images) -> float:
    import numpy as np

    from catdog.predict import Predictor

    predictor = Predictor.load(model_file)
    results = predictor.predict(list(images.paths))
    # An unreadable photo (moved or damaged since) is left out, not counted wrong.
    correct = [predictor.class_names.index(r.label) == y for r, y in zip(results, images.labels) if r.error is None]
    return float(np.mean(correct)) if correct else 0.0

