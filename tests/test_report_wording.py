"""The run report's words: mistakes counted in good English, a Not-sure answer is no confident mistake, an ECE explained."""

from __future__ import annotations

from catdog.report import Sample, _samples_html, calibration_note

PHOTO = "data:image/jpeg;base64,AA=="


def _sample(true: str, predicted: str, confidence: float, unsure: bool = False) -> Sample:
    return Sample(f"{true}-{confidence}.jpg", true, predicted, confidence, PHOTO, unsure=unsure)


def test_one_mistake_is_not_the_1_most_confident_mistakes():
    text = _samples_html([_sample("cat", "dog", 0.97), _sample("dog", "dog", 0.99)])
    assert "The one confident mistake first, then confident right answers." in text
    assert "The 1 most confident mistakes" not in text
    assert "The 2 most confident mistakes first" in _samples_html([_sample("cat", "dog", 0.97), _sample("dog", "cat", 0.9)])


def test_a_wrong_answer_under_the_not_sure_line_is_shown_as_not_sure():
    text = _samples_html([_sample("cat", "dog", 0.599, unsure=True), _sample("dog", "dog", 0.99)])
    assert "confident mistake" not in text
    assert "1 wrong best guess under the Not-sure line" in text
    assert "<b>Not sure</b> · best guess: dog, 59.9% · true cat ✗" in text and "card unsure" in text


def test_a_pet_the_check_flagged_shows_the_apps_answer_not_the_class():
    flagged = Sample("cat-0.97.jpg", "cat", "cat", 0.97, PHOTO, not_pet=True)
    text = _samples_html([flagged, _sample("dog", "dog", 0.99)])
    assert "<b>Not a cat or dog</b> · if it were a pet: cat, 97.0% · true cat ✗" in text  # the app did not say cat
    assert "<b>cat</b>" not in text and "confident mistake" not in text
    assert "1 photo the app calls &quot;Not a cat or dog&quot;, then confident right answers." in text


def test_the_shown_confidence_never_rounds_up_to_certainty():
    assert "99.9% · true dog" in _samples_html([_sample("dog", "dog", 0.99996)])


def test_a_calibrated_ece_worse_than_the_uncalibrated_one_is_explained():
    cal = {"ece": 0.057, "ece_uncalibrated": 0.026, "temperature": 1.62, "log_loss_uncalibrated": 0.31}
    note = calibration_note(300, 0.29, cal)
    assert "Calibrated ECE (0.057) is worse than uncalibrated (0.026) on these 300 photos" in note
    assert "fitted on training photos held out for it" in note and "from 0.310 to 0.290" in note
    assert calibration_note(300, 0.29, {**cal, "ece": 0.02}) is None  # better: nothing to explain
