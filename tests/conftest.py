"""Shared fixtures: tiny generated images and datasets, an isolated CATDOG_HOME."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory):
    """Every test runs with its own CATDOG_HOME, never the user's."""
    home = tmp_path_factory.mktemp("catdog-home")
    old = {k: os.environ.get(k) for k in ("CATDOG_HOME", "CATDOG_RUNS_DIR", "CATDOG_CACHE_DIR", "CATDOG_DATA_ROOTS")}
    os.environ["CATDOG_HOME"] = str(home)
    # The pages apply the server's path rule: the tests' datasets live in pytest's temp folder and ../shared/data.
    os.environ["CATDOG_DATA_ROOTS"] = os.pathsep.join(map(str, (tmp_path_factory.getbasetemp(), SHARED_DATA.parent, REPO)))
    os.environ.pop("CATDOG_RUNS_DIR", None)
    os.environ.pop("CATDOG_CACHE_DIR", None)
    yield home
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A plain cats/dogs folder with 12 images per class."""
    return make_class_folders(tmp_path_factory.mktemp("tiny") / "data")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_dataset):
    """A finished seed run at 32x32 on the tiny dataset (trained once per session)."""
    from catdog.training import TrainConfig, train

    runs_dir = tmp_path_factory.mktemp("runs")
    cfg = TrainConfig(data=str(tiny_dataset), model="seed", epochs=2, batch_size=8, image_size=32, val_split=0.25, precision="float32")
    return train(cfg, runs_dir=runs_dir, run_id="tiny-seed", verbose=0, stream=io.StringIO(), lock=False, handle_signals=False)


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "train").is_dir():
        pytest.skip(f"real photos not found at {SHARED_DATA}; integration test needs ../shared/data/catdog-small")
    return SHARED_DATA
