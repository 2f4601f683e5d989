"""Defaults in one place: the notebook's settings, folders, and limits."""

from __future__ import annotations

import os
from pathlib import Path

# The notebook's settings.
IMAGE_SIZE = 256
BATCH_SIZE = 32
EPOCHS = 10
CLASS_NAMES = ("cat", "dog")  # index 0 = cat, 1 = dog, as in the notebook
THRESHOLD = 0.5
DEFAULT_PRESET = "compact"  # the notebook's network stays available as "seed"
SEED = 1337

# A warm start (--init-from) on a few hundred photos: its own defaults, measured on a
# "new collection" proxy (benchmarks/warm_start_recipe.py, docs/recipe.md).
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

# Photos classified from one drop on the Predict page; the rest are refused with a message.
MAX_PREDICT_FILES = int(os.environ.get("CATDOG_MAX_PREDICT_FILES", "200"))

MODEL_FILENAME = "model.keras"


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
    return Path(os.environ.get("CATDOG_RUNS_DIR", home() / "runs")).expanduser().resolve()


def datasets_dir() -> Path:
    return home() / "datasets"


def cache_dir() -> Path:
    return Path(os.environ.get("CATDOG_CACHE_DIR", home() / "cache")).expanduser().resolve()


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def assets_dir() -> Path:
    return project_root() / "assets"
