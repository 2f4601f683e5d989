"""The words for a prediction: verdicts, a floored confidence, and a tally that counts each photo once."""

from __future__ import annotations

import pytest

from catdog.predict import Prediction
from catdog.verdicts import NOT_PET, NOT_SURE, UNREADABLE, percent, probability, shown, tally, tally_text, verdict


@pytest.mark.parametrize(
    "p, text",
    [(0.9998, "99.9%"), (1.0, "99.9%"), (0.99949, "99.9%"), (0.7, "70.0%"), (0.5, "50.0%"), (0.6129, "61.2%"), (0.0, "0.0%")],
)
def test_a_confidence_is_floored_and_never_reads_as_certainty(p, text):
    assert percent(p) == text
    assert shown(p) == pytest.approx(float(text[:-1]) / 100) and shown(p) <= 0.999  # what tables format themselves


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan"), "0.9", None])
def test_a_confidence_that_is_no_probability_is_refused(bad):
    with pytest.raises(ValueError, match="p must be a probability"):
        percent(bad)


def _results() -> list[Prediction]:
    sure_cat = Prediction("a", "cat", 0.1, 0.9)
    sure_dog = Prediction("b", "dog", 0.95, 0.95)
    unsure_dog = Prediction("c", "dog", 0.6, 0.6, uncertain=True)
    broken = Prediction("d", error="not an image")
    return [sure_cat, sure_dog, unsure_dog, broken]


def test_each_photo_is_counted_once():
    counts = tally(_results(), ["cat", "dog"])
    assert counts == {"cat": 1, "dog": 1, NOT_SURE: 1, NOT_PET: 0, UNREADABLE: 1}
    assert sum(counts.values()) == 4  # the unsure dog is not a dog as well
    assert tally_text(counts) == "1 cat · 1 dog · 1 not sure · 1 unreadable"


def test_a_not_pet_mark_wins_over_the_class_and_not_sure():
    result = Prediction("e", "dog", 0.97, 0.97)
    result.not_pet = True  # set by a model with an open-set check
    assert verdict(result) == NOT_PET
    assert tally([result], ["cat", "dog"])[NOT_PET] == 1
    assert verdict(Prediction("f", "cat", 0.2, 0.8)) == "cat"


@pytest.mark.parametrize(("p", "text"), [(0.99996, "> 0.999"), (1.0, "> 0.999"), (0.9994, "= 0.999"), (0.948, "= 0.948"),
                                         (0.5, "= 0.500"), (0.0006, "= 0.001"), (0.00004, "< 0.001"), (0.0, "< 0.001")])
def test_a_probability_is_never_printed_as_certainty_either_way(p, text):
    assert probability(p) == text


def test_the_clis_compact_probability_has_four_digits_and_no_space():
    assert probability(0.94821, 4, space=False) == "=0.9482"
    assert probability(0.99999, 4, space=False) == ">0.9999"
    with pytest.raises(ValueError, match="between 0 and 1"):
        probability(1.5)
