"""Opt-in int8: static post-training quantisation of the ONNX export with ONNX Runtime's tools.

`export_int8` exports the float32 ONNX model (`catdog.export`), quantises it
(QDQ, int8 weights per channel, uint8 activations) calibrated on training
photos, and, given a labelled folder, measures how much accuracy it costs.
It stays opt-in: the serving `model.onnx` is float32, and the int8 file is
only used where someone points a runtime at it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from catdog import config
from catdog.errors import CatdogError

CALIBRATION_IMAGES = 200
_BATCH = 16


@dataclass
class QuantizationReport:
    """Accuracy of the float32 and the int8 model on one labelled folder."""

    n: int
    accuracy_float32: float
    accuracy_int8: float
    flipped: int  # photos whose label changed
    max_abs_diff: float  # largest change of P(class 1)

    @property
    def change_points(self) -> float:
        return 100.0 * (self.accuracy_int8 - self.accuracy_float32)


def calibration_files(folder: str | os.PathLike, limit: int = CALIBRATION_IMAGES) -> list[Path]:
    """Up to `limit` image files under `folder`, spread evenly over the sorted list (so both classes appear)."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit!r}")
    root = Path(folder)
    if not root.is_dir():
        raise CatdogError(f"calibration folder {str(root)!r} not found; pass a folder of training photos")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in config.IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise CatdogError(f"no images under {str(root)!r} to calibrate the int8 model on")
    step = max(1, len(files) // limit)
    return files[::step][:limit]


def quantize_onnx(float_onnx: str | os.PathLike, out: str | os.PathLike, calibration: list[Path], image_size: int) -> Path:
    """Write the int8 (QDQ) version of `float_onnx` to `out`, calibrated on `calibration` photos.

    Raises:
        CatdogError: onnxruntime's quantisation tools are missing or failed.
    """
    try:
        import onnxruntime as ort
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise CatdogError(f"int8 quantisation needs onnxruntime: `pip install onnxruntime` ({exc})") from exc
    from catdog.preprocess import load_array

    first = ort.InferenceSession(str(float_onnx), providers=["CPUExecutionProvider"]).get_inputs()[0]
    dtype = np.uint8 if first.type == "tensor(uint8)" else np.float32
    good = []
    for path in calibration:
        try:
            good.append(load_array(path, image_size))
        except (CatdogError, ValueError):
            continue
    if not good:
        raise CatdogError("none of the calibration photos could be read")

    class _Reader(CalibrationDataReader):
        def __init__(self):
            self._batches = iter([np.stack(good[i : i + _BATCH]).astype(dtype) for i in range(0, len(good), _BATCH)])

        def get_next(self):
            batch = next(self._batches, None)
            return None if batch is None else {first.name: batch}

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        try:
            quant_pre_process(str(float_onnx), str(prepared))
        except Exception:  # noqa: BLE001 - pre-processing only helps; quantise the original without it
            shutil.copyfile(float_onnx, prepared)
        staged = Path(tmp) / "int8.onnx"
        try:
            quantize_static(
                str(prepared), str(staged), _Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            )
        except Exception as exc:  # noqa: BLE001 - the quantiser raises many types
            raise CatdogError(f"int8 quantisation failed: {exc}") from exc
        shutil.move(str(staged), out)
    return out


def compare(float_onnx: str | os.PathLike, int8_onnx: str | os.PathLike, check_data: str | os.PathLike,
            class_names: list[str], threshold: float = config.THRESHOLD) -> QuantizationReport:
    """Accuracy of both ONNX files on a labelled folder, and how many labels int8 flips."""
    from catdog import data
    from catdog.onnx_runtime import OnnxModel

    models = [OnnxModel(float_onnx), OnnxModel(int8_onnx)]
    size = models[0].image_size
    if size is None:
        raise CatdogError(f"{str(float_onnx)!r} has no fixed input size")
    images, _ = data.load_labelled_folder(check_data, class_names)
    decoded = data.decode_images(images, size, cache="memory")
    if not len(decoded):
        raise CatdogError(f"no readable labelled photos in {str(check_data)!r}")
    probs = [
        np.concatenate([m(np.asarray(decoded.images[i : i + 64])) for i in range(0, len(decoded), 64)]) for m in models
    ]
    labels = np.asarray(decoded.labels)
    predicted = [p >= threshold for p in probs]
    return QuantizationReport(
        n=len(labels),
        accuracy_float32=float(np.mean(predicted[0] == labels)),
        accuracy_int8=float(np.mean(predicted[1] == labels)),
        flipped=int(np.sum(predicted[0] != predicted[1])),
        max_abs_diff=float(np.abs(probs[0] - probs[1]).max()),
    )


def export_int8(
    model,
    out: str | os.PathLike | None,
    calibration_data: str | os.PathLike,
    check_data: str | os.PathLike | None = None,
    calibration_images: int = CALIBRATION_IMAGES,
) -> tuple[Path, QuantizationReport | None]:
    """Export a model as int8 ONNX (with a `.catdog.json` sidecar) and check it on a labelled folder.

    Args:
        model: what `catdog.predict.resolve_model` accepts.
        out: the int8 file (default `model_onnx_int8.onnx` beside the model).
        calibration_data: a folder of training photos (never the validation photos).
        check_data: a labelled folder to measure the accuracy change on, or None.
        calibration_images: how many photos to calibrate on.
    """
    from catdog.export import check_target, export_model, sidecar_path
    from catdog.predict import resolve_model

    files = calibration_files(calibration_data, calibration_images)
    model_file, _ = resolve_model(model)
    out = Path(out) if out else model_file.with_name("model_onnx_int8.onnx")
    check_target(out, "onnx")  # like every export: never over a file it did not write
    with tempfile.TemporaryDirectory() as tmp:
        float_onnx = export_model(model_file, "onnx", Path(tmp) / "float32.onnx")
        info = json.loads(sidecar_path(float_onnx).read_text())
        quantize_onnx(float_onnx, out, files, info["image_size"])
        report = compare(float_onnx, out, check_data, info["class_names"], info["threshold"]) if check_data else None
    info["quantization"] = {
        "type": "int8 static (QDQ), weights per channel",
        "calibration_images": len(files),
        "calibration_data": str(calibration_data),
    }
    if report is not None:
        info["quantization"]["check"] = {
            "data": str(check_data),
            "n": report.n,
            "accuracy_float32": report.accuracy_float32,
            "accuracy_int8": report.accuracy_int8,
            "flipped": report.flipped,
        }
    from catdog.onnx_runtime import file_sha256

    info["files"] = {".": file_sha256(out)}
    sidecar_path(out).write_text(json.dumps(info, indent=2) + "\n")
    return out, report
