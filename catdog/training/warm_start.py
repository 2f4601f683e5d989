"""Warm start: begin a training from a trained model's weights (`--init-from bundled|RUN|FILE`)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from catdog import config as defaults
from catdog import runs
from catdog.errors import RunError
from catdog.models.layers import iter_layers

WARM_START_LR_FACTOR = 0.1  # a warm start fine-tunes at a tenth of the preset's learning rate


def resolve_init_from(init_from: str) -> Path:
    """The model file that `--init-from` names: "bundled", a run folder or id, or a .keras file.

    Raises:
        RunError: it names no model.
    """
    from catdog.model_files import bundled_model_dir, resolve_model

    if init_from == "bundled":
        folder = bundled_model_dir()
        if folder is None:
            raise RunError("the bundled model is missing (assets/model/model.keras); reinstall catdog or pass --init-from RUN")
        return folder / defaults.MODEL_FILENAME
    model_file, _ = resolve_model(init_from)
    return model_file


def source_temperature(init_from: str | None) -> tuple[float, bool]:
    """(temperature, whether it was fitted) saved with the starting model; (1.0, False) for none or an uncalibrated one."""
    from catdog.calibration import DEFAULT_TEMPERATURE
    from catdog.model_files import resolve_model
    from catdog.predict import calibration_of

    if not init_from:
        return DEFAULT_TEMPERATURE, False
    try:
        _, settings = resolve_model(init_from)
    except RunError:
        return DEFAULT_TEMPERATURE, False  # the source is gone since (a resumed run): calibrate as a new model
    saved = settings.get("calibration") if isinstance(settings.get("calibration"), dict) else {}
    temperature, _ = calibration_of(settings)
    return temperature, "temperature" in saved


def load_source(init_from: str):
    """The trained model that `init_from` names, loaded without its optimizer.

    Raises:
        RunError: it names no model, or the file cannot be loaded.
    """
    from catdog.models import load_keras

    model_file = resolve_init_from(init_from)
    try:
        return load_keras(model_file, compile=False)  # registers catdog's own layers first
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a bad file
        raise RunError(f"cannot load {str(model_file)!r} to start from: {exc}; pick a finished run or 'bundled'") from exc


def copy_source_weights(source, model, init_from: str) -> None:
    """`copy_weights` from a loaded source, with a clear RunError when its network does not fit `model`."""
    try:
        copy_weights(source, model)
    except ValueError as exc:
        raise RunError(
            f"cannot start from {init_from!r}: {exc} (another preset or image size); "
            "train that preset from scratch or pick a run of the same preset"
        ) from exc


def init_weights_from(model, init_from: str) -> str:
    """Copy the weights of a trained model into `model`, layer by layer, by name.

    Layers without weights (augmentation, pooling) may differ; every layer with
    weights must exist in the source with the same shapes.

    Returns:
        The source model file.

    Raises:
        RunError: the source cannot be loaded or its network does not fit.
    """
    model_file = str(resolve_init_from(init_from))
    copy_source_weights(load_source(init_from), model, model_file)
    return model_file


def copy_weights(source, target) -> None:
    """Copy weights layer by layer, by name; layers without weights may differ.

    Raises:
        ValueError: a layer of `target` with weights is missing in `source`, or its shapes differ.
    """
    by_name = {layer.name: layer for layer in iter_layers(source)}
    for layer in iter_layers(target):
        if not layer.weights:
            continue
        other = by_name.get(layer.name)
        shapes = [tuple(w.shape) for w in layer.weights]
        if other is None or [tuple(w.shape) for w in other.weights] != shapes:
            raise ValueError(f"its network differs from {target.name!r} at layer {layer.name!r}")
        layer.set_weights(other.get_weights())


def warm_start_fits(preset: str, image_size: int, class_names: Sequence[str]) -> bool:
    """Whether starting from the bundled model suits this training: same preset and size, and its two classes (cat, dog)."""
    from catdog.model_files import bundled_model_dir

    folder = bundled_model_dir()
    if folder is None or len(class_names) != 2:
        return False
    bundled = runs.read_json(folder / "config.json", {}) or {}
    same_classes = [str(n) for n in bundled.get("class_names") or ()] == [str(n) for n in class_names]
    return bundled.get("preset", bundled.get("model")) == preset and bundled.get("image_size") == image_size and same_classes
