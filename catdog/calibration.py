"""Confidence you can trust: temperature scaling, ECE and log loss (NumPy only).

A model's sigmoid output p is rescaled as sigmoid(logit(p) / T). One scalar T,
fitted on held-out *training* photos, never on validation, makes the stated
confidence match the observed accuracy without changing any label: the
transform is monotonic, so the ranking of photos and every decision at the
0.5 threshold stay the same.
"""

from __future__ import annotations

import numpy as np

DEFAULT_TEMPERATURE = 1.0
DEFAULT_UNCERTAIN_BELOW = 0.75  # calibrated confidence under this shows as "Not sure"
ECE_BINS = 15
_EPS = 1e-7


def logit(probs: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(probs, np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def apply_temperature(probs, temperature: float = DEFAULT_TEMPERATURE) -> np.ndarray:
    """Calibrated P(class 1): sigmoid(logit(p) / temperature), as float32."""
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    probs = np.asarray(probs, np.float32)
    if temperature == 1.0:
        return probs
    return (1.0 / (1.0 + np.exp(-logit(probs) / temperature))).astype(np.float32)


def log_loss(labels, probs) -> float:
    """Mean binary cross-entropy of P(class 1) against 0/1 labels."""
    y = np.asarray(labels, np.float64).reshape(-1)
    p = np.clip(np.asarray(probs, np.float64).reshape(-1), _EPS, 1 - _EPS)
    if y.size == 0:
        raise ValueError("log_loss needs at least one label")
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def expected_calibration_error(labels, probs, bins: int = ECE_BINS) -> float:
    """ECE over the confidence of the predicted class, in `bins` equal-width bins."""
    rows = reliability_bins(labels, probs, bins)
    n = sum(row["count"] for row in rows)
    if n == 0:
        raise ValueError("expected_calibration_error needs at least one label")
    return float(sum(row["count"] / n * abs(row["accuracy"] - row["confidence"]) for row in rows if row["count"]))


def reliability_bins(labels, probs, bins: int = ECE_BINS) -> list[dict]:
    """Per-bin mean confidence, accuracy and count, for a reliability diagram and the ECE."""
    y = np.asarray(labels).reshape(-1) == 1
    p = np.asarray(probs, np.float64).reshape(-1)
    confidence = np.where(p >= 0.5, p, 1 - p)
    correct = (p >= 0.5) == y
    edges = np.linspace(0.5, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    for b in range(bins):
        mask = which == b
        rows.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "count": int(mask.sum()),
                "confidence": float(confidence[mask].mean()) if mask.any() else None,
                "accuracy": float(correct[mask].mean()) if mask.any() else None,
            }
        )
    return rows


def fit_temperature(labels, probs, low: float = 0.05, high: float = 20.0) -> float:
    """The temperature that minimises log loss on (labels, probs); golden-section search on log T."""
    y = np.asarray(labels, np.float64).reshape(-1)
    z = logit(probs).reshape(-1)
    if y.size == 0 or y.size != z.size:
        raise ValueError(f"fit_temperature needs matching, non-empty labels and probs, got {y.size} and {z.size}")

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        # log(1 + exp(-|s|)) form: stable for large logits
        return float(np.mean(np.maximum(s, 0) - s * y + np.log1p(np.exp(-np.abs(s)))))

    a, b = np.log(low), np.log(high)
    ratio = (np.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    for _ in range(80):
        if nll(c) < nll(d):
            b, d = d, c
            c = b - ratio * (b - a)
        else:
            a, c = c, d
            d = a + ratio * (b - a)
    return float(np.exp((a + b) / 2))


def is_uncertain(calibrated_p_class1: float, uncertain_below: float = DEFAULT_UNCERTAIN_BELOW) -> bool:
    """True when the calibrated confidence of the predicted class is under the threshold."""
    p = float(calibrated_p_class1)
    return max(p, 1 - p) < uncertain_below


def _model_probs(model, decoded) -> np.ndarray:
    """P(class 1) of a Keras model for a decoded set's images, as float64."""
    return model.predict(np.asarray(decoded.images), batch_size=64, verbose=0).reshape(-1).astype(np.float64)


def _figures(labels, probs, temperature: float) -> dict:
    """ECE and log loss before and after temperature scaling."""
    scaled = apply_temperature(probs, temperature)
    return {
        "ece_before": round(expected_calibration_error(labels, probs), 5),
        "ece_after": round(expected_calibration_error(labels, scaled), 5),
        "log_loss_before": round(log_loss(labels, probs), 5),
        "log_loss_after": round(log_loss(labels, scaled), 5),
    }


def calibrate(model, calibration, validation=None, log=print) -> dict:
    """Fit the temperature on held-out training photos; report ECE and log loss before and after.

    The validation figures are reported only, never used to fit.

    Args:
        model: a Keras model with one sigmoid output.
        calibration: the held-out training photos (a `catdog.data.DecodedSet`).
        validation: the validation photos, reported only (optional).
        log: where the one-line summary goes.

    Returns:
        The `calibration` record of config.json (temperature, threshold, figures).
    """
    raw = _model_probs(model, calibration)
    temperature = fit_temperature(calibration.labels, raw)
    record = {
        "temperature": round(temperature, 6),
        "uncertain_below": DEFAULT_UNCERTAIN_BELOW,
        "fitted_on": len(calibration),
        "method": "temperature scaling on held-out training photos",
        "calibration": _figures(calibration.labels, raw, temperature),
    }
    if validation is not None and len(validation):
        record["validation"] = _figures(validation.labels, _model_probs(model, validation), temperature)
    shown = record.get("validation") or record["calibration"]
    log(
        f"Calibrated on {len(calibration)} held-out training photos: temperature {temperature:.3f}; "
        f"ECE {shown['ece_before']:.4f} -> {shown['ece_after']:.4f}, log loss {shown['log_loss_before']:.4f} -> "
        f"{shown['log_loss_after']:.4f} ({'validation' if 'validation' in record else 'calibration'} photos)"
    )
    return record
