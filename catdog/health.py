"""Is a training learning? The near-chance rule, shared by the Train page, the catalog and the CLI.

A leaf module (no catdog imports), so anything may use it without an import cycle.
"""

from __future__ import annotations

import math
from typing import Sequence


def near_chance(
    rows: Sequence[dict], n_classes: int = 2, after_epochs: int = 2, margin: float = 0.1, n_validation: int | None = None
) -> bool:
    """True when, after `after_epochs` epochs or more, the latest validation accuracy is still near chance.

    "Latest" is the mean of the last two epochs, and "near" is within `margin`
    of chance, or within two standard errors of it when a small validation set
    (`n_validation` photos) makes one lucky epoch look like learning.
    """
    accs = [r.get("val_accuracy") for r in rows if isinstance(r.get("val_accuracy"), (int, float))]
    if len(accs) < after_epochs:
        return False
    chance = 1.0 / max(n_classes, 1)
    tolerance = margin
    if n_validation:
        tolerance = max(margin, 2 * math.sqrt(chance * (1 - chance) / n_validation))
    return sum(accs[-2:]) / len(accs[-2:]) < chance + tolerance
