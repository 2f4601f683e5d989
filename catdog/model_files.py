"""Where models are: the bundled one, the active one, run folders and .keras files (no TensorFlow).

Apart from `catdog.predict` so that modules it imports (the ONNX export, the
open-set check) can find a model without importing it back.
"""

from __future__ import annotations

import os
from pathlib import Path

from catdog import config
from catdog.errors import RunError
from catdog.runs import read_json

BUNDLED = "bundled"  # the name the app, `--init-from`, `catdog use` and `--model` give the bundled model


def bundled_model_dir() -> Path | None:
    """The run folder shipped under assets/ (None if it is not there)."""
    folder = config.assets_dir() / "model"
    return folder if (folder / config.MODEL_FILENAME).exists() else None


def active_model_file() -> Path:
    return config.home() / "active_model.json"


def set_active_model(run_or_file: str | os.PathLike) -> Path:
    """Make a run's model the default one for the app, `predict` and `evaluate`."""
    from catdog.atomic import atomic_write_json

    model_file, _ = resolve_model(run_or_file)
    active_model_file().parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(active_model_file(), {"model": str(model_file)})
    return model_file


def default_model() -> Path | None:
    """The active model if one was chosen and still exists, else the bundled one."""
    chosen = (read_json(active_model_file(), {}) or {}).get("model")
    if chosen and Path(chosen).exists():
        return Path(chosen)
    return bundled_model_dir()


def model_file(model: str | os.PathLike) -> Path:
    """The `.keras` file of a run folder (or the file itself), resolved."""
    model = Path(model)
    return (model / config.MODEL_FILENAME if model.is_dir() else model).resolve()


def model_choices() -> list[Path]:
    """Model files to choose from: the default (active or bundled) first, then every finished or stopped run's, newest first."""
    from catdog.runs import list_runs

    choices: list[Path] = []
    default = default_model()
    if default is not None:
        choices.append(model_file(default))
    for run in list_runs():
        if run.model_path.exists() and run.status().get("state") in ("finished", "stopped") and run.model_path.resolve() not in choices:
            choices.append(run.model_path.resolve())
    return choices


def resolve_model(model: str | os.PathLike | None = None) -> tuple[Path, dict]:
    """Find a model file and its settings (class names, image size, threshold).

    Args:
        model: a run folder, a run id, a `.keras` file, "bundled" for the bundled model, or None for the default.

    Raises:
        RunError: nothing usable was found; the message says how to get a model.
    """
    if model is None:
        model = default_model()
        if model is None:
            raise RunError("no trained model yet: train one with `catdog train --data DIR` (or on the Train page)")
    elif str(model) == BUNDLED:
        model = bundled_model_dir()
        if model is None:
            raise RunError("the bundled model is missing (assets/model/model.keras); reinstall catdog, or pass a run")
    path = Path(model).expanduser()
    if not path.exists() and not path.is_absolute() and (config.runs_dir() / str(model)).exists():
        path = config.runs_dir() / str(model)
    if path.is_dir():
        model_file = path / config.MODEL_FILENAME
        if not model_file.exists():
            raise RunError(f"run {str(model)!r} has no {config.MODEL_FILENAME} yet (still training, or it failed)")
        settings = read_json(path / "config.json", {}) or {}
    elif path.is_file():
        model_file = path
        settings = read_json(path.parent / "config.json", {}) or {}
    else:
        raise RunError(f"model {str(model)!r} not found; pass a run folder or a .keras file")
    check_model_file(model_file)
    return model_file.resolve(), settings


def check_model_file(path: Path) -> None:
    """Refuse a file that is not a Keras model (a `.keras` zip with a config.json, or a legacy .h5).

    Keras itself reports such a file as "File not found", which misleads.

    Raises:
        RunError: the file exists but is not a Keras model file.
    """
    import zipfile

    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
        if head.startswith(b"\x89HDF\r\n\x1a\n"):  # a legacy HDF5 model
            return
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                if "config.json" in zf.namelist():
                    return
    except (OSError, zipfile.BadZipFile) as exc:
        raise RunError(f"cannot read model file {str(path)!r}: {getattr(exc, 'strerror', None) or exc}") from exc
    raise RunError(f"{str(path)!r} is not a Keras model file (a .keras archive); pass a run folder or a .keras file that catdog saved")
