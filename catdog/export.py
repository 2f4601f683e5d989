"""Export a trained model: Keras file, TensorFlow SavedModel, TFLite or ONNX.

Every export gets a `<name>.catdog.json` sidecar with the class names,
threshold, image size and input format, so a serving stack needs nothing else.
The exported model takes uint8-valued RGB (fed as float32 for SavedModel, TFLite
and ONNX) of shape (n, size, size, 3) and returns P(class 1) of shape (n, 1).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from catdog.errors import CatdogError

FORMATS = ("keras", "savedmodel", "tflite", "onnx")
_SUFFIX = {"keras": ".keras", "savedmodel": "", "tflite": ".tflite", "onnx": ".onnx"}


def sidecar_path(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".catdog.json")


def export_model(model: str | os.PathLike | None, fmt: str, out: str | os.PathLike | None = None) -> Path:
    """Export a run's model (a run folder, id, .keras file or None for the default).

    Args:
        model: what `catdog.predict.resolve_model` accepts.
        fmt: one of `FORMATS`.
        out: the target path (default: next to the model, named by format).

    Returns:
        The exported file or folder; its sidecar is `sidecar_path(out)`.

    Raises:
        CatdogError: unknown format, unreadable model, or a converter that is missing or failed.
    """
    from catdog.predict import Predictor, resolve_model

    if fmt not in FORMATS:
        raise CatdogError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    model_file, _ = resolve_model(model)
    predictor = Predictor.load(model_file, precision="float32", backend="tensorflow")  # portable: every runtime has float32
    out = Path(out) if out else model_file.with_name(f"model_{fmt}{_SUFFIX[fmt]}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "keras":
        shutil.copyfile(model_file, out)
    elif fmt == "savedmodel":
        _saved_model(predictor.model, out)
    elif fmt == "tflite":
        _tflite(predictor.model, out)
    else:
        _onnx(predictor.model, predictor.image_size, out)
    _write_sidecar(out, fmt, predictor, model_file)
    return out


def _write_sidecar(out: Path, fmt: str, predictor, model_file: Path) -> None:
    info = {
        "format": fmt,
        "source": str(model_file),
        "class_names": predictor.class_names,
        "threshold": predictor.threshold,
        "image_size": predictor.image_size,
        "input": {"shape": [None, predictor.image_size, predictor.image_size, 3], "values": "RGB 0..255 (uint8 values, float32 dtype outside keras)", "resize": "bilinear, squash to square"},
        "output": "P(class_names[1]) per image, shape (n, 1); label = class_names[1] if >= threshold",
    }
    sidecar_path(out).write_text(json.dumps(info, indent=2) + "\n")


def _saved_model(model, out: Path) -> None:
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    try:
        model.export(str(out), format="tf_saved_model", verbose=False)
    except Exception as exc:  # noqa: BLE001 - TensorFlow raises many types here
        raise CatdogError(f"SavedModel export failed: {exc}") from exc


def _tflite(model, out: Path) -> None:
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "saved"
        _saved_model(model, saved)
        try:
            data = tf.lite.TFLiteConverter.from_saved_model(str(saved)).convert()
        except Exception as exc:  # noqa: BLE001
            raise CatdogError(f"TFLite conversion failed: {exc}") from exc
    out.write_bytes(data)


def _onnx(model, image_size: int, out: Path) -> None:
    try:
        import tensorflow as tf
        import tf2onnx
    except ImportError as exc:
        raise CatdogError(f"ONNX export needs tf2onnx: `pip install tf2onnx onnxruntime` ({exc})") from exc
    spec = (tf.TensorSpec((None, image_size, image_size, 3), tf.float32, name="image"),)

    @tf.function(input_signature=spec)
    def serve(image):
        return tf.cast(model(image, training=False), tf.float32)

    try:
        tf2onnx.convert.from_function(serve, input_signature=spec, opset=17, output_path=str(out))
    except Exception as exc:  # noqa: BLE001 - the converter raises many types
        raise CatdogError(f"ONNX conversion failed: {exc}") from exc
