"""Defaults in one place: the notebook's settings, folders, and limits."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping

# The notebook's settings.
IMAGE_SIZE = 256
BATCH_SIZE = 32
EPOCHS = 10
CLASS_NAMES = ("cat", "dog")  # index 0 = cat, 1 = dog, as in the notebook
THRESHOLD = 0.5
DEFAULT_PRESET = "lite0"  # the pretrained backbone; "compact" trains from scratch, "seed" is the notebook's network
SEED = 1337

# A warm start (--init-from) on a few hundred photos: its own defaults, measured on a
# "new collection" proxy with an earlier compact bundled model (benchmarks/warm_start_recipe.py,
# docs/warm_start_recipe.json, docs/recipe.md).
WARM_START_EPOCHS = 10
WARM_START_PATIENCE = 3  # early stopping on the validation loss, best weights restored

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")

# Pillow refuses images over this many pixels (decompression bombs). 120 MP lets a
# 10000x10000 scan through (about 300 MB decoded) and refuses anything much larger.
MAX_IMAGE_PIXELS = 120_000_000
# Longest side / shortest side. Within the pixel limit a 1 x 119,999,999 strip is
# allowed, and resizing it to the model's square took 4.4 GB; at 30:1 (wider than
# any panorama) resizing costs no more than the decoded pixels do.
MAX_ASPECT_RATIO = 30

# Photos classified from one drop on the Predict page (CATDOG_MAX_PREDICT_FILES); the rest are refused with a message.
DEFAULT_MAX_PREDICT_FILES = 200

MODEL_FILENAME = "model.keras"


def max_predict_files() -> int:
    """Photos the Predict page classifies from one drop: CATDOG_MAX_PREDICT_FILES, default 200.

    Raises:
        SettingError: the variable is set to anything but a whole number >= 1.
    """
    return int(env_number("CATDOG_MAX_PREDICT_FILES", DEFAULT_MAX_PREDICT_FILES, integer=True, minimum=1))


def env_number(name: str, default: float, integer: bool = False, minimum: float = 0.0, above: bool = False,
               env: Mapping[str, str] | None = None) -> float:
    """A number from the environment variable `name`; `default` when it is unset or blank.

    Every number catdog reads from the environment goes through here, so a bad
    value is one clear message naming the variable and the value, never a traceback.

    Args:
        name: the variable.
        default: the value when it is unset or blank.
        integer: only whole numbers are accepted.
        minimum: the smallest value accepted.
        above: the value must be greater than `minimum`, not equal to it.
        env: the environment to read (default `os.environ`).

    Raises:
        SettingError: the value is not a finite number in range.
    """
    from catdog.errors import SettingError

    raw = (os.environ if env is None else env).get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < minimum or (above and value == minimum):
        kind = "a whole number" if integer else "a number"
        bound = f"{'>' if above else '>='} {minimum:g}"
        raise SettingError(f"the environment variable {name}={raw!r} is not understood: it must be {kind} {bound} "
                          f"(default {default:g}); fix it or unset it")
    return value


def env_flag(name: str, default: bool) -> bool:
    """A yes/no setting from the environment variable `name` (1/true/yes/on or 0/false/no/off); `default` when unset.

    Raises:
        SettingError: any other value (a typo must not silently pick a side).
    """
    from catdog.errors import SettingError

    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingError(f"the environment variable {name}={raw!r} is not understood: use 1 (or true, yes, on) or "
                      f"0 (or false, no, off); fix it or unset it")


def env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    """One of `choices` from the environment variable `name`; `default` when it is unset or blank.

    Raises:
        SettingError: any other value.
    """
    from catdog.errors import SettingError

    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if raw not in choices:
        raise SettingError(f"the environment variable {name}={raw!r} is not understood: use one of {', '.join(choices)}; "
                           "fix it or unset it")
    return raw


def home() -> Path:
    """The folder that holds runs, datasets and caches (`CATDOG_HOME`, else `default_home()`)."""
    chosen = os.environ.get("CATDOG_HOME")
    return Path(chosen).expanduser().resolve() if chosen else default_home()


def default_home() -> Path:
    """catdog-data/ in the project folder of a source checkout, else the user's data folder.

    Anchored, not relative to the current folder: `catdog runs` run from anywhere
    sees the same runs as the app.
    """
    root = project_root()
    if (root / "pyproject.toml").exists():
        return root / "catdog-data"
    try:
        from platformdirs import user_data_dir

        return Path(user_data_dir("catdog", appauthor=False)).resolve()
    except ImportError:
        return (Path.home() / ".local" / "share" / "catdog").resolve()


def runs_dir() -> Path:
    return Path(os.environ.get("CATDOG_RUNS_DIR", "").strip() or home() / "runs").expanduser().resolve()


def datasets_dir() -> Path:
    return home() / "datasets"


def cache_dir() -> Path:
    return Path(os.environ.get("CATDOG_CACHE_DIR", "").strip() or home() / "cache").expanduser().resolve()


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def assets_dir() -> Path:
    return project_root() / "assets"
