"""How a prediction is said: its verdict (a class, "Not sure", "Not a cat or dog"), its confidence, and a tally.

One place for the words, so `catdog predict`, the Predict page and the run
report say the same thing. Nothing here imports TensorFlow or Streamlit.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

NOT_SURE = "not sure"
NOT_PET = "not a cat or dog"
UNREADABLE = "unreadable"
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
