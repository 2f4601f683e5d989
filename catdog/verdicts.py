"""How a prediction is said: its verdict (a class, "Not sure", "Not a cat or dog"), its confidence, its colour, and a tally.

One place for the words and colours, so `catdog predict`, its `--json`, the
Predict page, its CSV and the run report say the same thing. The verdict is
what the product answered (exported as `answer`); a prediction's `label` stays
the model's best class. Nothing here imports TensorFlow or Streamlit.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

NOT_SURE = "not sure"
NOT_PET = "not a cat or dog"
UNREADABLE = "unreadable"
# Each answer's colour: (Streamlit Markdown colour name, hex for HTML), the one definition the pages and the report
# use. The classes are yellow and blue, "not sure" grey, "not a cat or dog" red: a class is far from every other
# answer for colour-blind readers too (class 0 was orange, beside the red; tests/test_verdicts.py measures it).
CLASS_COLOURS = (("yellow", "#DEA816"), ("blue", "#1C83E1"))
ANSWER_COLOURS = {NOT_SURE: ("gray", "#9CA3AF"), NOT_PET: ("red", "#D94A57"), UNREADABLE: ("red", "#D94A57")}
HIGHEST_SHOWN = 0.999  # a model's answer is never certain: 0.9998 shows as 99.9%, never 100.0%


def _check_probability(p) -> None:
    if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability between 0 and 1, got {p!r}")


def shown(p: float) -> float:
    """A confidence as it may be shown: rounded down to 0.001 and at most 0.999 (for tables that format it themselves).

    Rounded to nearest, P = 0.9998 would read "100.0% confident": a certainty the model does not have.

    Raises:
        ValueError: `p` is not a number between 0 and 1.
    """
    _check_probability(p)
    return math.floor(min(p, HIGHEST_SHOWN) * 1000 + 1e-9) / 1000  # the epsilon keeps 0.7 at 0.700 (0.7 * 1000 = 699.99...)


def percent(p: float) -> str:
    """A confidence as a percentage with one decimal, rounded down and at most 99.9% (`shown`)."""
    return f"{shown(p) * 100:.1f}%"


def probability(p: float, digits: int = 3, space: bool = True) -> str:
    """A class probability with its relation, never rounded onto certainty: "= 0.948", "> 0.999", "< 0.001".

    Rounded to nearest, P(dog) = 0.99996 would print as 1.000 (sure it is a dog) and 0.00004 as 0.000
    (sure it is a cat). `space=False` gives "=0.9482" for compact text such as the CLI's line.

    Raises:
        ValueError: `p` is not a number between 0 and 1.
    """
    _check_probability(p)
    step = 10.0 ** -digits
    gap = " " if space else ""
    if p >= 1.0 - step / 2:
        return f">{gap}{1.0 - step:.{digits}f}"
    if p < step / 2:
        return f"<{gap}{step:.{digits}f}"
    return f"={gap}{p:.{digits}f}"


def verdict(result) -> str:
    """A prediction's verdict: NOT_PET (when the model has an open-set check and it fired), NOT_SURE, or the label.

    Args:
        result: a `catdog.predict.Prediction` (read by attribute: `not_pet` only where the model sets it).
    """
    if result.error is not None:
        return UNREADABLE
    if getattr(result, "not_pet", False):
        return NOT_PET
    if result.uncertain:
        return NOT_SURE
    return str(result.label)


def best_guess(result) -> str | None:
    """The class behind a "not a cat or dog" or "not sure" verdict, worded so that its percentage belongs to it.

    'if it were a pet: cat, 90.4%' (never "not a cat or dog 90.4%", which reads as sure it is no pet),
    'best guess: cat, 62.0%'; None for an answered class or an unreadable photo.
    """
    said = verdict(result)
    if said == NOT_PET:
        return f"if it were a pet: {result.label}, {percent(result.confidence)}"
    if said == NOT_SURE:
        return f"best guess: {result.label}, {percent(result.confidence)}"
    return None


def colour(answer: str, class_names: Sequence[str]) -> tuple[str, str]:
    """(Streamlit Markdown colour name, hex) of an answer: a class by its index in `class_names`, else its verdict's."""
    if answer in ANSWER_COLOURS:
        return ANSWER_COLOURS[answer]
    index = list(class_names).index(answer) if answer in class_names else len(CLASS_COLOURS) - 1
    return CLASS_COLOURS[index % len(CLASS_COLOURS)]


def tally(results: Iterable, class_names: Sequence[str]) -> dict[str, int]:
    """How many photos got each verdict; every photo counted once ("Not sure" ones are not also a class).

    Returns:
        {class: n, ..., NOT_SURE: n, NOT_PET: n, UNREADABLE: n}, classes first, in order.
    """
    counts = dict.fromkeys([*class_names, NOT_SURE, NOT_PET, UNREADABLE], 0)
    for result in results:
        key = verdict(result)
        counts[key] = counts.get(key, 0) + 1
    return counts


def tally_text(counts: dict[str, int]) -> str:
    """'17 cat · 18 dog · 5 not sure' (kinds with none left out, classes always shown)."""
    extra = (NOT_SURE, NOT_PET, UNREADABLE)
    return " · ".join(f"{n:,} {name}" for name, n in counts.items() if n or name not in extra)
