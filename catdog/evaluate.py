"""Evaluate a model on a labelled folder: metrics, confusion matrix, mistakes."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from catdog import data
from catdog.calibration import apply_temperature, expected_calibration_error, log_loss, reliability_bins
from catdog.predict import Predictor
from catdog.verdicts import NOT_SURE, verdict


@dataclass
class EvalReport:
    """Metrics at one threshold, plus every file's P(class 1)."""

    n: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    log_loss: float
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    threshold: float
    class_names: list[str]
    files: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    probs: list[float] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    model: str = ""
    data: str = ""
    raw_probs: list[float] = field(default_factory=list)  # before the model's temperature scaling
    temperature: float = 1.0
    uncertain_below: float = 0.75
    not_pet: list[bool] | None = None  # per file: flagged "not a cat or dog" (None: the model has no open-set check)

    def open_set(self) -> dict | None:
        """The share of these pet photos wrongly flagged "not a cat or dog" (None without a check)."""
        if self.not_pet is None:
            return None
        flagged = [f for f, bad in zip(self.files, self.not_pet) if bad]
        return {"n": len(self.not_pet), "flagged": len(flagged), "share": len(flagged) / max(len(self.not_pet), 1), "files": flagged}

    def calibration(self) -> dict:
        """ECE (15 bins) and log loss before and after calibration, and the reliability bins."""
        labels = np.asarray(self.labels)
        raw = np.asarray(self.raw_probs if self.raw_probs else self.probs)
        if not len(labels):
            return {"temperature": self.temperature, "ece": None, "ece_uncalibrated": None, "log_loss_uncalibrated": None, "bins": []}
        return {
            "temperature": self.temperature,
            "uncertain_below": self.uncertain_below,
            "ece": expected_calibration_error(labels, self.probs),
            "ece_uncalibrated": expected_calibration_error(labels, raw),
            "log_loss_uncalibrated": log_loss(labels, raw),
            "bins": reliability_bins(labels, self.probs),
        }

    def misclassified(self) -> list[dict]:
        """Wrong predictions, most confidently wrong first."""
        rows = []
        for f, y, p in zip(self.files, self.labels, self.probs):
            pred = int(p >= self.threshold)
            if pred != y:
                rows.append(
                    {
                        "file": f,
                        "true": self.class_names[y],
                        "predicted": self.class_names[pred],
                        "p_dog": round(p, 6),
                        "wrongness": abs(p - y),
                    }
                )
        return sorted(rows, key=lambda r: -r["wrongness"])

    def summary(self) -> dict:
        calibration = self.calibration()
        return {
            "accuracy": self.accuracy,
            "ece": calibration["ece"],
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "log_loss": self.log_loss,
            "calibration": {k: v for k, v in calibration.items() if k != "bins"},
            "n": self.n,
            "confusion": self.confusion,
            "threshold": self.threshold,
            "class_names": self.class_names,
            "misclassified": [{k: v for k, v in r.items() if k != "wrongness"} for r in self.misclassified()],
            "not_pet_wrongly_flagged": self.open_set(),
            "skipped": [{"file": f, "error": e} for f, e in self.skipped],
            "model": self.model,
            "data": self.data,
        }


def metrics_at(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict:
    """Accuracy, precision, recall, F1, log loss and confusion for class 1 = positive."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    pred = (probs >= threshold).astype(np.int64)
    tp = int(((pred == 1) & (labels == 1)).sum())
    tn = int(((pred == 0) & (labels == 0)).sum())
    fp = int(((pred == 1) & (labels == 0)).sum())
    fn = int(((pred == 0) & (labels == 1)).sum())
    n = len(labels)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    loss = log_loss(labels, probs) if n else math.nan
    return {
        "n": n,
        "accuracy": (tp + tn) / n if n else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "log_loss": loss,
        "confusion": [[tn, fp], [fn, tp]],
    }


def check_threshold(threshold: float | None) -> float | None:
    """The decision threshold as a float in [0, 1] (None stays None: the model's own).

    Raises:
        ValueError: `threshold` is not a number in [0, 1] (NaN and infinities included).
    """
    if threshold is None:
        return None
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 <= value <= 1.0:  # False for NaN too
        raise ValueError(f"threshold must be a number in [0, 1], got {threshold!r}")
    return value


def evaluate(predictor: Predictor, data_dir: str | os.PathLike, threshold: float | None = None, batch_size: int = 64) -> EvalReport:
    """Run a model over every labelled image in a folder (the validation part of a split layout)."""
    threshold = check_threshold(threshold)
    images, names = data.load_labelled_folder(data_dir, predictor.class_names)
    return evaluate_images(predictor, images, names, str(data_dir), threshold, batch_size)


def evaluate_images(predictor: Predictor, images: data.ImageSet, names: list[str], label: str,
                    threshold: float | None = None, batch_size: int = 64) -> EvalReport:
    """Run a model over labelled files (e.g. a run's held-out photos); `label` says which data they are."""
    threshold = check_threshold(threshold)
    decoded = data.decode_images(images, predictor.image_size, cache="memory")
    raw, scores = _outputs(predictor, decoded.images, batch_size)
    probs = apply_temperature(raw, predictor.temperature)
    t = predictor.threshold if threshold is None else float(threshold)
    m = metrics_at(decoded.labels, probs, t)
    return EvalReport(
        threshold=t,
        class_names=names,
        files=[str(p) for p in decoded.paths],
        labels=decoded.labels.tolist(),
        probs=probs.astype(float).tolist(),
        skipped=[(str(p), r) for p, r in decoded.skipped],
        model=predictor.source,
        data=label,
        raw_probs=raw.astype(float).tolist(),
        temperature=predictor.temperature,
        uncertain_below=predictor.uncertain_below,
        not_pet=None if scores is None else predictor.is_not_pet(scores).tolist(),
        **m,
    )


def _outputs(predictor: Predictor, images, batch_size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Raw P(class 1) and open-set scores (None without a check) of decoded images, in batches."""
    if not len(images):
        return np.zeros(0), None
    parts = [predictor.raw_outputs(np.asarray(images[i : i + batch_size])) for i in range(0, len(images), batch_size)]
    raw = np.concatenate([p for p, _ in parts])
    scores = None if parts[0][1] is None else np.concatenate([s for _, s in parts])
    return raw, scores


def evaluate_not_pets(predictor: Predictor, folder: str | os.PathLike, batch_size: int = 64) -> dict:
    """The share of a folder of photos with no cat or dog that the model flags "not a cat or dog".

    Every image under `folder` counts (any sub-folders, no labels needed); unreadable
    files are listed and skipped. Each photo the check lets through is listed once:
    in `missed` when it was answered a class, in `not_sure` when the answer was
    "not sure" (the same rule as `catdog predict`: `catdog.verdicts.verdict`).

    Raises:
        DatasetError: the folder has no images.
        CatdogError: the model has no open-set check to measure.
    """
    from catdog.errors import CatdogError

    if predictor.openset is None:
        raise CatdogError(
            f"{predictor.source} has no open-set check, so it never says 'not a cat or dog'; "
            "fit one with `catdog openset fit RUN` or train a new model"
        )
    paths = data.image_files(folder)
    decoded = data.decode_images(data.ImageSet(paths, [0] * len(paths)), predictor.image_size, cache="memory")
    raw, scores = _outputs(predictor, decoded.images, batch_size)
    flagged = predictor.is_not_pet(scores)
    answered: dict[str, list[dict]] = {"missed": [], "not_sure": []}
    for f, p, s, hit in zip(decoded.paths, apply_temperature(raw, predictor.temperature), scores, flagged):
        if hit:
            continue
        result = predictor.prediction(str(f), float(p), float(s))
        said = verdict(result)
        key = "not_sure" if said == NOT_SURE else "missed" if said in predictor.class_names else None
        if key:
            answered[key].append({"file": str(f), "label": result.label, "score": round(float(s), 4)})
    return {
        "data": str(folder),
        "n": len(decoded),
        "flagged": int(flagged.sum()),
        "share": float(flagged.mean()) if len(flagged) else 0.0,
        "threshold": predictor.openset.threshold,
        "missed": answered["missed"],  # answered a class: the check's misses
        "not_sure": answered["not_sure"],  # let through, but answered "not sure" (label: the best guess)
        "skipped": [{"file": str(f), "error": e} for f, e in decoded.skipped],
        "model": predictor.source,
    }
