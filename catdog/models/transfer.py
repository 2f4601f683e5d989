"""The pretrained-weights switch for presets with an ImageNet backbone (`lite0`).

`random_weights()` builds them with random weights (parameter counts, quick
tests); `CATDOG_PRETRAINED=0` does the same from the environment. The weights
themselves come from an installed package (`catdog.pretrained`), never a download.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

PRETRAINED_ENV = "CATDOG_PRETRAINED"
PRETRAINED = True  # module-level switch: False builds with random weights (tests, parameter counts)


@contextmanager
def random_weights():
    """Build pretrained presets without loading ImageNet weights (e.g. to count parameters)."""
    global PRETRAINED
    old, PRETRAINED = PRETRAINED, False
    try:
        yield
    finally:
        PRETRAINED = old


def pretrained_enabled() -> bool:
    """Whether a pretrained preset loads its ImageNet weights (`random_weights` and `CATDOG_PRETRAINED=0` say no)."""
    if not PRETRAINED:
        return False
    value = os.environ.get(PRETRAINED_ENV, "1").strip().lower()
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on", ""):
        return True
    from catdog.errors import CatdogError

    raise CatdogError(f"{PRETRAINED_ENV}={os.environ.get(PRETRAINED_ENV)!r} is not understood; use 1 (ImageNet weights) or 0 (random)")
