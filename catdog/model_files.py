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


OPENSET_FILENAME = "openset.npz"


def openset_path(model_file: str | os.PathLike) -> Path:
    """Where a model keeps its "not a cat or dog" check: `openset.npz` beside `model.keras`, else `<file>.openset.npz`."""
    model_file = Path(model_file)
    return model_file.with_name(OPENSET_FILENAME if model_file.name == config.MODEL_FILENAME else f"{model_file.name}.{OPENSET_FILENAME}")


class PartsDisagree(RunError):
    """A run's model or check is not the one its config.json records (`check_unit`)."""

    def __init__(self, message: str, check: Path | None = None):
        super().__init__(message)
        self.check = check


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
    elif path.is_file():
        model_file = path
    else:
        raise RunError(f"model {str(model)!r} not found; pass a run folder or a .keras file")
    check_model_file(model_file)
    settings = read_settings(model_file)
    check_unit(model_file, settings)
    return model_file.resolve(), settings


MAX_CONFIG_BYTES = 4 * 1024 * 1024


def read_settings(model_file: Path) -> dict:
    """The config.json beside a model, checked: an object whose class names, size, threshold and calibration make sense.

    A model with no config.json has the notebook's settings ({}).

    Raises:
        RunError: naming the file, what is wrong and what to do.
    """
    import json

    path = model_file.parent / "config.json"
    fix = f"restore it from the run's copy, or retrain; a .keras file on its own needs no {path.name}, so move it away"
    try:
        if not path.exists():
            return {}
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise RunError(f"{str(path)!r} is {path.stat().st_size / 1e6:.0f} MB, not a catdog config.json; {fix}")
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise RunError(f"{str(path)!r} is unreadable ({type(exc).__name__}: {exc}); {fix}") from None
    problem = _settings_problem(settings)
    if problem:
        raise RunError(f"{str(path)!r} is not a usable model record: {problem}; {fix}")
    return settings


def _settings_problem(settings) -> str | None:
    import math

    if not isinstance(settings, dict):
        return f"it is a JSON {type(settings).__name__}, not an object"
    names = settings.get("class_names")
    if names is not None and not (isinstance(names, list) and len(names) == 2 and all(isinstance(n, str) and n for n in names)):
        return f"class_names must be two names, got {names!r:.80}"
    size = settings.get("image_size")
    if size is not None and not (isinstance(size, int) and not isinstance(size, bool) and 8 <= size <= 4096):
        return f"image_size must be an integer from 8 to 4096, got {size!r:.40}"
    threshold = settings.get("threshold")
    if threshold is not None and not (isinstance(threshold, (int, float)) and not isinstance(threshold, bool)
                                      and math.isfinite(threshold) and 0 < threshold < 1):
        return f"threshold must be a number between 0 and 1, got {threshold!r:.40}"
    for key in ("calibration", "openset", "unit"):
        if settings.get(key) is not None and not isinstance(settings[key], dict):
            return f"{key!r} must be an object, got a {type(settings[key]).__name__}"
    calibration = settings.get("calibration") or {}
    for key in ("temperature", "uncertain_below"):
        value = calibration.get(key)
        if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                                      and value > 0):
            return f"calibration {key} must be a positive number, got {value!r:.40}"
    return None


def unit_record(model_file: Path) -> dict:
    """config.json's `unit`: the sha256 of the model and of its check, written last when a run is finished."""
    from catdog.hashing import file_sha256

    check = openset_path(model_file)
    return {"model_sha256": file_sha256(model_file), "openset_sha256": file_sha256(check) if check.exists() else None}


def check_unit(model_file: Path, settings: dict) -> None:
    """Refuse a run whose model, calibration and check are not from one finish (e.g. killed while finishing).

    config.json's `unit` (written after model.keras and openset.npz) names both files'
    sha256; a model or a check that is not the recorded one means the parts disagree.
    Records without `unit` (older catdog, a bare .keras file) are taken as they are.

    Raises:
        RunError: which part disagrees and what to do.
    """
    from catdog.hashing import cached_file_sha256

    unit = settings.get("unit")
    if not unit or model_file.name != config.MODEL_FILENAME:
        return
    check = openset_path(model_file)
    found = {"model_sha256": cached_file_sha256(model_file), "openset_sha256": cached_file_sha256(check) if check.exists() else None}
    wrong = [key.split("_")[0] for key in found if unit.get(key) != found[key]]
    if wrong:
        which = " and ".join({"model": config.MODEL_FILENAME, "openset": check.name}[w] for w in wrong)
        raise PartsDisagree(
            f"run {str(model_file.parent)!r} is not whole: its {which} is not the one its config.json records (a training "
            "killed while it was finishing leaves new and old parts side by side); finish it with "
            f"`catdog train --resume {model_file.parent}` (or `catdog openset fit {model_file.parent}` when only the check changed), "
            "or train again",
            check if "openset" in wrong and check.exists() else None,
        )


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
