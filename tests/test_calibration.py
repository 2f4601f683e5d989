"""Calibration: temperature scaling changes confidence, never the label order."""

from __future__ import annotations

import json

import numpy as np
import pytest

from catdog import calibration as cal
from catdog.predict import Predictor, calibration_of


def _overconfident(n: int = 4000, seed: int = 0):
    """Labels and probabilities from a model whose logits are 3x too large."""
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(0, 2, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-true_logit))).astype(int)
    probs = 1 / (1 + np.exp(-3 * true_logit))
    return labels, probs


def test_fit_temperature_recovers_the_overconfidence_factor():
    labels, probs = _overconfident()
    t = cal.fit_temperature(labels, probs)
    assert 2.6 < t < 3.4
    scaled = cal.apply_temperature(probs, t)
    assert cal.expected_calibration_error(labels, scaled) < cal.expected_calibration_error(labels, probs) / 2
    assert cal.log_loss(labels, scaled) < cal.log_loss(labels, probs)


def test_temperature_changes_confidence_but_never_the_label_order():
    labels, probs = _overconfident(500)
    for t in (0.5, 1.7, 4.0):
        scaled = cal.apply_temperature(probs, t)
        assert np.all(np.diff(scaled[np.argsort(probs)]) >= 0)  # same order: monotonic
        assert np.array_equal(probs >= 0.5, scaled >= 0.5)
        assert not np.allclose(scaled, probs, atol=1e-3)


def test_ece_of_a_perfectly_calibrated_model_is_small_and_of_a_liar_is_large():
    rng = np.random.default_rng(1)
    probs = rng.random(20000)
    labels = (rng.random(20000) < probs).astype(int)
    assert cal.expected_calibration_error(labels, probs) < 0.02
    liar = np.where(probs >= 0.5, 0.999, 0.001)
    assert cal.expected_calibration_error(labels, liar) > 0.2


def test_reliability_bins_count_every_prediction_once():
    labels, probs = _overconfident(300)
    bins = cal.reliability_bins(labels, probs)
    assert len(bins) == cal.ECE_BINS
    assert sum(b["count"] for b in bins) == 300


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_apply_temperature_rejects_a_bad_temperature(bad):
    with pytest.raises(ValueError, match="temperature"):
        cal.apply_temperature([0.3], bad)


def test_calibration_of_falls_back_on_missing_or_nonsense_settings():
    assert calibration_of({}) == (1.0, 0.75)
    assert calibration_of({"calibration": {"temperature": "hot"}}) == (1.0, 0.75)
    assert calibration_of({"calibration": {"temperature": -2, "uncertain_below": 3}}) == (1.0, 0.75)
    assert calibration_of({"calibration": {"temperature": 2.5, "uncertain_below": 0.8}}) == (2.5, 0.8)


class _FixedModel:
    """Stands in for a Keras model: returns preset probabilities."""

    input_shape = (None, 8, 8, 3)


def _predictor_with(probs, temperature, below=0.75):
    p = Predictor(_FixedModel(), ["cat", "dog"], 8, 0.5, temperature=temperature, uncertain_below=below)
    p.raw_outputs = lambda batch: (np.asarray(probs[: len(batch)], np.float32), None)  # noqa: E731 - no open-set check
    p.preprocess = lambda source: source  # noqa: E731 - the arrays are the model inputs
    return p


def test_predictor_applies_the_saved_temperature_and_marks_unsure_photos():
    raw = [0.99, 0.8, 0.3, 0.02]
    arrays = [np.zeros((8, 8, 3), np.uint8)] * 4
    sharp, soft = _predictor_with(raw, 1.0), _predictor_with(raw, 3.0)
    a, b = sharp.predict(arrays), soft.predict(arrays)
    assert [r.label for r in a] == [r.label for r in b] == ["dog", "dog", "cat", "cat"]
    assert all(x.confidence >= y.confidence for x, y in zip(a, b))
    assert b[0].confidence < 0.99
    assert [r.uncertain for r in a] == [False, False, True, False]
    assert [r.uncertain for r in b] == [False, True, True, False]
    assert json.loads(json.dumps(b[1].as_dict()))["uncertain"] is True


def test_near_chance_flags_only_a_run_that_stays_at_chance():
    from catdog.training import near_chance

    flat = [{"val_accuracy": 0.5}, {"val_accuracy": 0.52}]
    assert near_chance(flat)
    assert not near_chance(flat[:1])
    assert not near_chance(flat + [{"val_accuracy": 0.8}, {"val_accuracy": 0.85}])
    # One lucky epoch on 60 validation photos is not learning (seen on a 300-photo dataset from scratch).
    noisy = [{"val_accuracy": a} for a in (0.483, 0.633, 0.517)]
    assert near_chance(noisy, n_validation=60)
    assert not near_chance([{"val_accuracy": a} for a in (0.6, 0.8, 0.85)], n_validation=60)


def _confident_and_right(n: int, errors: int = 0):
    """A small calibration split as a warm start sees it: almost every photo right, most with a wide margin."""
    rng = np.random.default_rng(n)
    labels = np.arange(n) % 2
    margin = rng.uniform(2.0, 8.0, n)
    logits = np.where(labels == 1, margin, -margin)
    logits[:errors] *= -0.3  # a few confidently wrong photos
    return labels, 1 / (1 + np.exp(-logits))


@pytest.mark.parametrize("errors", [0, 1, 3])
def test_a_24_photo_calibration_split_keeps_a_sensible_temperature_near_the_start(errors):
    labels, probs = _confident_and_right(24, errors)
    plain = cal.fit_temperature(labels, probs, warn=False)
    choice = cal.choose_temperature(labels, probs, start=1.62, start_is_calibrated=True)
    assert not cal.at_bound(choice.temperature) and 1.0 < choice.temperature < 2.0
    assert abs(np.log(choice.temperature / 1.62)) < abs(np.log(plain / 1.62))  # pulled toward the start, not to the plain fit
    assert choice.method.startswith("fitted on 24 held-out training photos, pulled toward the starting model's 1.62")


def test_a_24_photo_split_all_right_would_send_the_plain_fit_to_the_bound_but_not_the_choice():
    labels, probs = _confident_and_right(24)
    assert cal.at_bound(cal.fit_temperature(labels, probs, warn=False))  # what the old calibration saved: T = 0.05
    assert cal.choose_temperature(labels, probs, start=1.62, start_is_calibrated=True).temperature > 1.0


@pytest.mark.parametrize("start, calibrated, words", [(1.62, True, "kept the starting model's temperature 1.62"),
                                                     (1.0, False, "left uncalibrated")])
def test_a_2_photo_split_keeps_the_starting_temperature(start, calibrated, words):
    labels, probs = _confident_and_right(2)
    choice = cal.choose_temperature(labels, probs, start=start, start_is_calibrated=calibrated)
    assert choice.kept and choice.temperature == start and choice.method == f"{words} (2 photos are too few to fit a temperature)"


def test_a_large_calibration_split_is_fitted_as_the_photos_show():
    labels, probs = _overconfident(2000)
    choice = cal.choose_temperature(labels, probs, start=1.0)
    assert not choice.kept and 2.6 < choice.temperature < 3.4
    assert choice.temperature == pytest.approx(choice.fitted, rel=0.02)  # the prior hardly matters with 2,000 photos


def test_a_split_of_one_class_keeps_the_start():
    choice = cal.choose_temperature(np.ones(30), np.full(30, 0.9), start=1.5, start_is_calibrated=True)
    assert choice.kept and choice.temperature == 1.5 and "one class" in choice.method


def test_a_fit_at_the_search_bound_warns():
    labels, probs = _confident_and_right(2)
    with pytest.warns(cal.CalibrationWarning, match="bound"):
        t = cal.fit_temperature(labels, probs)
    assert cal.at_bound(t)


def test_choose_temperature_rejects_a_bad_start():
    with pytest.raises(ValueError, match="start"):
        cal.choose_temperature([0, 1], [0.2, 0.8], start=0.0)
