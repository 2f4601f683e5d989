"""Confidence you can trust: temperature scaling, ECE and log loss (NumPy only).

A model's sigmoid output p is rescaled as sigmoid(logit(p) / T). One scalar T,
fitted on held-out *training* photos, never on validation, makes the stated
confidence match the observed accuracy without changing any label: the
transform is monotonic, so the ranking of photos and every decision at the
0.5 threshold stay the same.
"""

from __future__ import annotations

from dataclasses import dataclass

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


class CalibrationWarning(UserWarning):
    """A temperature search ended at a bound of its range: the data did not pin T down."""


SEARCH_RANGE = (0.05, 20.0)
# Fewer calibration photos than this: no fit at all, the starting temperature is kept.
MIN_FIT_PHOTOS = 10
# The prior on log T around the starting temperature: its SD. 0.3 when the start was itself
# fitted (a warm start from a calibrated model); 1.0 (weak) around T = 1 for a new model.
# Measured on warm starts from the bundled model (docs/recipe.md, Calibration on a small split):
# on 24 photos, 0.3 beat both keeping the start and the plain fit on held-out log loss.
PRIOR_SIGMA_CALIBRATED = 0.3
PRIOR_SIGMA_NEW = 1.0


def _nll_of_log_t(labels: np.ndarray, logits: np.ndarray):
    def nll(log_t: float) -> float:
        s = logits / np.exp(log_t)
        # log(1 + exp(-|s|)) form: stable for large logits
        return float(np.mean(np.maximum(s, 0) - s * labels + np.log1p(np.exp(-np.abs(s)))))

    return nll


def _golden_section(f, a: float, b: float, steps: int = 80) -> float:
    ratio = (np.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    for _ in range(steps):
        if f(c) < f(d):
            b, d = d, c
            c = b - ratio * (b - a)
        else:
            a, c = c, d
            d = a + ratio * (b - a)
    return (a + b) / 2


def fit_temperature(
    labels,
    probs,
    low: float = SEARCH_RANGE[0],
    high: float = SEARCH_RANGE[1],
    prior: float | None = None,
    prior_sigma: float = PRIOR_SIGMA_CALIBRATED,
    warn: bool = True,
) -> float:
    """The temperature that minimises log loss on (labels, probs); golden-section search on log T.

    With `prior`, the MAP temperature under a log-normal prior centred on `prior`
    (SD `prior_sigma` on log T): a few photos move T a little from `prior`, many
    photos as far as they show. Warns (`CalibrationWarning`) when the answer sits
    at `low` or `high`: then the photos did not determine T, and the bound is no estimate.
    """
    y = np.asarray(labels, np.float64).reshape(-1)
    z = logit(probs).reshape(-1)
    if y.size == 0 or y.size != z.size:
        raise ValueError(f"fit_temperature needs matching, non-empty labels and probs, got {y.size} and {z.size}")
    if not 0 < low < high:
        raise ValueError(f"fit_temperature needs 0 < low < high, got low={low!r}, high={high!r}")
    if prior is not None and not (np.isfinite(prior) and prior > 0 and prior_sigma > 0):
        raise ValueError(f"prior must be a positive temperature with prior_sigma > 0, got {prior!r} and {prior_sigma!r}")
    nll = _nll_of_log_t(y, z)
    objective = nll
    if prior is not None:
        centre, weight = np.log(prior), 1.0 / (2 * prior_sigma**2 * y.size)  # the prior, per photo

        def objective(log_t: float) -> float:
            return nll(log_t) + weight * (log_t - centre) ** 2

    log_t = _golden_section(objective, np.log(low), np.log(high))
    if warn and at_bound(float(np.exp(log_t)), low, high):
        import warnings

        warnings.warn(
            f"the temperature search ended at its bound ({np.exp(log_t):.3g}, range {low:g} to {high:g}) on {y.size} photos: "
            "they do not determine the temperature",
            CalibrationWarning,
            stacklevel=2,
        )
    return float(np.exp(log_t))


def at_bound(temperature: float, low: float = SEARCH_RANGE[0], high: float = SEARCH_RANGE[1]) -> bool:
    """True when a fitted temperature is (within 1%) one of the search's bounds."""
    return temperature <= low * 1.01 or temperature >= high / 1.01


def prior_worth(labels, probs, temperature: float, prior_sigma: float) -> float:
    """How many photos the prior counts as: its curvature in log T over one photo's, at `temperature`."""
    y = np.asarray(labels, np.float64).reshape(-1)
    nll, h, at = _nll_of_log_t(y, logit(probs).reshape(-1)), 1e-3, np.log(temperature)
    per_photo = (nll(at + h) - 2 * nll(at) + nll(at - h)) / h**2
    return float(1.0 / (prior_sigma**2 * per_photo)) if per_photo > 0 else float("inf")


@dataclass
class TemperatureChoice:
    """The temperature to use, and why, in words for config.json and the Train page.

    Attributes:
        temperature: the chosen T.
        method: what was done, e.g. "kept the starting model's temperature 1.62 (2 photos are too few ...)".
        kept: True when the starting temperature was kept as it was.
        fitted: the plain fit on the photos alone (None when none was made), for the record.
    """

    temperature: float
    method: str
    kept: bool
    fitted: float | None = None


def choose_temperature(labels, probs, start: float = DEFAULT_TEMPERATURE, start_is_calibrated: bool = False,
                       what: str = "held-out training photos") -> TemperatureChoice:
    """The temperature for a trained model from its held-out calibration photos, safe on a handful of them.

    Under `MIN_FIT_PHOTOS` photos, or photos of one class only, `start` is kept.
    Otherwise T is the MAP fit with a log-normal prior centred on `start`: SD
    `PRIOR_SIGMA_CALIBRATED` when `start` was itself fitted (a warm start from a
    calibrated model), `PRIOR_SIGMA_NEW` (weak) around 1 for a new model. A fit that
    still ends at a search bound is not used (`start` is kept).

    Args:
        labels, probs: the calibration photos' 0/1 labels and the model's raw P(class 1).
        start: the starting model's temperature (1.0: an uncalibrated or new model).
        start_is_calibrated: whether `start` was fitted before (a warm start).
        what: what the photos and their probabilities are, for the record.
    """
    if not np.isfinite(start) or start <= 0:
        raise ValueError(f"start must be a positive temperature, got {start!r}")
    y = np.asarray(labels).reshape(-1)
    n = int(y.size)
    keep = f"kept the starting model's temperature {start:.3g}" if start_is_calibrated else "left uncalibrated"
    if n < MIN_FIT_PHOTOS or len(np.unique(y)) < 2:
        why = f"{n} photos are too few" if n < MIN_FIT_PHOTOS else "the photos are all of one class"
        return TemperatureChoice(start, f"{keep} ({why} to fit a temperature)", kept=True)
    sigma = PRIOR_SIGMA_CALIBRATED if start_is_calibrated else PRIOR_SIGMA_NEW
    fitted = fit_temperature(y, probs, warn=False)
    temperature = fit_temperature(y, probs, prior=start, prior_sigma=sigma, warn=False)
    if at_bound(temperature):
        return TemperatureChoice(start, f"{keep} (the fit on {n} photos ended at the search's bound {temperature:.3g})", kept=True,
                                 fitted=fitted)
    toward = f"the starting model's {start:.3g}" if start_is_calibrated else "1 (uncalibrated)"
    worth = prior_worth(y, probs, temperature, sigma)
    worth_text = f"about {worth:,.0f} photos" if np.isfinite(worth) else "many photos"
    return TemperatureChoice(temperature, f"fitted on {n} {what}, pulled toward {toward} by a prior worth "
                             f"{worth_text}", kept=False, fitted=fitted)


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


def calibrate(
    model, calibration, validation=None, log=print, start: float = DEFAULT_TEMPERATURE, start_is_calibrated: bool = False
) -> dict:
    """Choose the temperature from held-out training photos; report ECE and log loss before and after.

    The validation figures are reported only, never used to fit. A handful of
    calibration photos never sets T on its own (`choose_temperature`): it stays
    near `start`, the starting model's temperature for a warm start.

    Args:
        model: a Keras model with one sigmoid output.
        calibration: the held-out training photos (a `catdog.data.DecodedSet`).
        validation: the validation photos, reported only (optional).
        log: where the one-line summary goes.
        start: the starting model's temperature (1.0 for a new model).
        start_is_calibrated: whether `start` was fitted (a warm start from a calibrated model).

    Returns:
        The `calibration` record of config.json (temperature, how it was chosen, figures).
    """
    validation = (validation.labels, _model_probs(model, validation)) if validation is not None and len(validation) else None
    return calibrate_probs(calibration.labels, _model_probs(model, calibration), validation, log, start, start_is_calibrated)


def calibrate_probs(
    labels, raw, validation: tuple | None = None, log=print, start: float = DEFAULT_TEMPERATURE, start_is_calibrated: bool = False,
    what: str = "held-out training photos",
) -> dict:
    """`calibrate` from the model's raw P(class 1) of the held-out training photos (and, reported only, of validation's).

    Args:
        labels, raw: the calibration photos' labels and raw probabilities.
        validation: (labels, raw probabilities) of the validation photos, or None.
    """
    labels = np.asarray(labels)
    raw = np.asarray(raw, np.float64)
    choice = choose_temperature(labels, raw, start, start_is_calibrated, what)
    temperature = choice.temperature
    record = {
        "temperature": round(temperature, 6),
        "uncertain_below": DEFAULT_UNCERTAIN_BELOW,
        "fitted_on": len(labels),
        "method": choice.method,
        "start_temperature": round(start, 6),
        "plain_fit": round(choice.fitted, 6) if choice.fitted is not None else None,
        "calibration": _figures(labels, raw, temperature),
    }
    if validation is not None:
        record["validation"] = _figures(np.asarray(validation[0]), np.asarray(validation[1], np.float64), temperature)
    shown = record.get("validation") or record["calibration"]
    log(
        f"Calibration: temperature {temperature:.3f}, {choice.method}; "
        f"ECE {shown['ece_before']:.4f} -> {shown['ece_after']:.4f}, log loss {shown['log_loss_before']:.4f} -> "
        f"{shown['log_loss_after']:.4f} ({'validation' if 'validation' in record else 'calibration'} photos)"
    )
    return record
