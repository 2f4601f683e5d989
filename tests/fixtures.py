"""Test helpers shared by the suite: paths, class colours and tiny generated images.

Fixtures live in conftest.py; these plain names are imported (`from tests.fixtures import ...`).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = (REPO.parent / "shared" / "data" / "catdog-small").resolve()

# Class colours the tiny models can learn in one epoch.
CAT_COLOUR = (200, 60, 40)
DOG_COLOUR = (40, 70, 210)


def image_bytes(size=(48, 40), colour=(128, 128, 128), fmt="JPEG", seed=0, mode="RGB") -> bytes:
    """A small noisy image of one colour, encoded in memory."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    arr = (rng.normal(0, 18, (h, w, 3)) + np.array(colour)).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")
    if mode != "RGB":
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def write_image(path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = kwargs.pop("fmt", "PNG" if path.suffix.lower() == ".png" else "JPEG")
    path.write_bytes(image_bytes(fmt=fmt, **kwargs))
    return path


def make_class_folders(root: Path, n: int = 12, names=("cats", "dogs"), size=(48, 40)) -> Path:
    """root/cats/*.jpg and root/dogs/*.jpg with learnable colours."""
    for name, colour in zip(names, (CAT_COLOUR, DOG_COLOUR)):
        for i in range(n):
            write_image(root / name / f"{name[:3]}{i:03d}.jpg", colour=colour, seed=i + (0 if colour == CAT_COLOUR else 1000), size=size)
    return root


def tiny_config(data: Path, epochs: int = 3):
    """A seed training at 32 px on a tiny dataset: seconds, not minutes."""
    from catdog.training import TrainConfig

    return TrainConfig(data=str(data), model="seed", epochs=epochs, batch_size=4, image_size=32, val_split=0.25, precision="float32")


def quiet(**kwargs) -> dict:
    """`train`/`resume` keyword arguments for a silent in-process training."""
    return dict(verbose=0, stream=io.StringIO(), handle_signals=False, **kwargs)


def epochs_of(run) -> list[int]:
    """The epoch numbers in a run's metrics.jsonl, in order."""
    return [row["epoch"] for row in run.metrics()]


def shown(markdown: str) -> str:
    """The text a reader sees for Markdown that `pages._text.plain` wrote (character references decoded)."""
    import html

    return html.unescape(markdown)
