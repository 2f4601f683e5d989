"""The words for a prediction: verdicts, a floored confidence, and a tally that counts each photo once."""

from __future__ import annotations

import pytest

from catdog.predict import Prediction
from catdog.verdicts import (
    NOT_PET,
    NOT_SURE,
    UNREADABLE,
    best_guess,
    colour,
    percent,
    probability,
    shown,
    tally,
    tally_text,
    verdict,
)


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


def test_a_best_guess_is_worded_so_its_percentage_belongs_to_the_class():
    flagged = Prediction("rocket.jpg", "cat", 0.096, 0.904, not_pet=True)
    unsure = Prediction("blur.jpg", "dog", 0.62, 0.62, uncertain=True)
    assert best_guess(flagged) == "if it were a pet: cat, 90.4%"  # never "not a cat or dog ... 90.4%"
    assert best_guess(unsure) == "best guess: dog, 62.0%"
    assert best_guess(Prediction("a", "cat", 0.1, 0.9)) is None and best_guess(Prediction("b", error="x")) is None


def test_json_gives_the_answer_and_keeps_the_best_class_as_label():
    flagged = Prediction("rocket.jpg", "cat", 0.096, 0.904, not_pet=True, openset_score=3.2).as_dict()
    assert (flagged["answer"], flagged["label"]) == (NOT_PET, "cat")
    assert Prediction("b", "dog", 0.6, 0.6, uncertain=True).as_dict()["answer"] == NOT_SURE
    assert Prediction("c", "metal", 0.9, 0.9).as_dict()["answer"] == "metal"  # the model's class name, whatever it is
    assert Prediction("d", error="not an image").as_dict() == {"file": "d", "error": "not an image"}


# Streamlit 1.67's light-theme text colour for each Markdown colour name (what a reader sees on a badge).
MARKDOWN_TEXT = {"red": "#9E303B", "orange": "#9B4519", "yellow": "#956B0F", "green": "#0C5A44", "blue": "#244FB4",
                 "violet": "#6F33B8", "gray": "#686255"}
# Machado et al. (2009) at full severity, on linear RGB.
COLOUR_BLIND = {
    "normal": ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413), (-0.011820, 0.042940, 0.968881)),
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216), (-0.003882, -0.048116, 1.051998)),
}


def _lab(hex_colour: str, seen: str) -> tuple[float, float, float]:
    """CIELAB of a colour as a reader with `seen` vision sees it."""
    srgb = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in srgb]
    lin = [min(max(sum(m * c for m, c in zip(row, lin)), 0.0), 1.0) for row in COLOUR_BLIND[seen]]
    xyz = [sum(m * c for m, c in zip(row, lin)) / white for row, white in zip(
        ((0.4124, 0.3576, 0.1805), (0.2126, 0.7152, 0.0722), (0.0193, 0.1192, 0.9505)), (0.95047, 1.0, 1.08883))]
    f = [v ** (1 / 3) if v > 0.008856 else 7.787 * v + 16 / 116 for v in xyz]
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def _distance(a: str, b: str, seen: str) -> float:
    return sum((x - y) ** 2 for x, y in zip(_lab(a, seen), _lab(b, seen))) ** 0.5


@pytest.mark.parametrize("seen", list(COLOUR_BLIND))
def test_a_class_never_shares_a_colour_a_reader_could_confuse_with_another_answer(seen):
    """Cat was orange, 26 ΔE from the dark red of "Not a cat or dog" (20 for a deuteranope): now each class is far
    from every other answer for colour-blind readers too. ("Not sure" and "Not a cat or dog", grey and red, are
    far apart for normal vision; for red-blind readers their icons and words tell them apart.)"""
    names = ["cat", "dog"]
    answers = [*names, NOT_SURE, NOT_PET]
    badges = {a: colour(a, names)[0] for a in answers}
    bars = {a: colour(a, names)[1] for a in answers}
    assert len(set(badges.values())) == len(answers), badges
    floor = 40 if seen == "normal" else 20  # CIELAB ΔE: 20 and more reads as another colour at a glance
    for i, a in enumerate(answers):
        for b in answers[i + 1 :]:
            if seen != "normal" and a not in names:
                continue
            assert _distance(MARKDOWN_TEXT[badges[a]], MARKDOWN_TEXT[badges[b]], seen) >= floor, (seen, a, b, badges)
            if NOT_SURE not in (a, b):  # the Not-sure bar is the track's grey on purpose
                assert _distance(bars[a], bars[b], seen) >= floor, (seen, a, b, bars)
