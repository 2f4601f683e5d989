"""Serve a trained model on ONNX Runtime: convert once, cache by hash, run without TensorFlow.

`ensure_onnx(model_file)` returns an ONNX file made from the `.keras` file: the
one beside it (`model.onnx`, written by every finished training and shipped
with the bundled model) when its record says it was made from a file with the
same sha256 and the ONNX file still has the sha256 the record pins, else one
converted once into `config.cache_dir()/onnx/<sha256>/`.
The ONNX graph is the Keras inference function `model(x, training=False)`
computing in float32. It takes uint8 RGB (n, size, size, 3), the array
`catdog.preprocess.load_array` gives, and returns the network's own P(class 1),
shape (n,), before the model's temperature calibration (the `Predictor` applies
that, for every backend alike), and, when the model has an open-set check
(`openset.npz` beside it), its score `not_pet_score`, shape (n,), computed in
the graph (`catdog.openset.scores_tf`). The record pins the sha256 of both
files, so a refitted check is never served from a stale graph.

Only conversion imports TensorFlow (and tf2onnx); finding a current file and
running it need onnxruntime and NumPy alone.

Make or refresh the file of a run folder (the bundled model included) with:

    python -m catdog.onnx_runtime assets/model
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from catdog import config
from catdog.errors import CatdogError
from catdog.hashing import file_sha256

log = logging.getLogger(__name__)

ONNX_FILENAME = "model.onnx"
RECORD_SUFFIX = ".catdog.json"  # the same sidecar name `catdog export` writes
OPSET = 17
FORMAT_VERSION = 2  # 2: the open-set score output, and the check's sha256 in the record


def record_path(onnx_file: str | os.PathLike) -> Path:
    onnx_file = Path(onnx_file)
    return onnx_file.with_name(onnx_file.name + RECORD_SUFFIX)


def onnxruntime_available() -> bool:
    """True when onnxruntime can be imported (checked without importing it)."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def beside_path(model_file: str | os.PathLike) -> Path:
    """Where a run folder keeps its ONNX file: `model.onnx` next to `model.keras`."""
    model_file = Path(model_file)
    return model_file.with_name(ONNX_FILENAME if model_file.name == config.MODEL_FILENAME else model_file.stem + ".onnx")


def cached_path(sha256: str) -> Path:
    return config.cache_dir() / "onnx" / sha256 / ONNX_FILENAME


def openset_sha256(model_file: str | os.PathLike) -> str | None:
    """The sha256 of the open-set check saved beside a model (None when it has none)."""
    from catdog.openset import path_for

    path = path_for(model_file)
    return file_sha256(path) if path.is_file() else None


def current_onnx(model_file: str | os.PathLike, sha256: str | None = None) -> Path | None:
    """The ONNX file made from this exact `.keras` file and open-set check, beside it or in the cache; None if there is none."""
    sha256 = sha256 or file_sha256(model_file)
    check = openset_sha256(model_file)
    for candidate in (beside_path(model_file), cached_path(_cache_key(sha256, check))):
        if _is_current(candidate, sha256, check):
            return candidate
    return None


def _cache_key(sha256: str, check: str | None) -> str:
    return sha256 if check is None else f"{sha256}-{check[:16]}"


def _is_current(onnx_file: Path, sha256: str, check: str | None = None) -> bool:
    try:
        record = json.loads(record_path(onnx_file).read_text())
    except (OSError, ValueError):
        return False
    if not (isinstance(record, dict) and record.get("source_sha256") == sha256 and record.get("openset_sha256") == check
            and record.get("catdog_onnx_version") == FORMAT_VERSION and onnx_file.is_file()):
        return False
    # The file itself is pinned too: a model.onnx swapped or damaged after conversion is not
    # the conversion of this model (a record without the pin is from before it: convert again).
    try:
        return record.get("onnx_sha256") == file_sha256(onnx_file)
    except OSError:
        return False


def ensure_onnx(model_file: str | os.PathLike, beside: bool = False) -> Path:
    """A current ONNX file for `model_file`, converting it once when there is none.

    Args:
        model_file: a `.keras` file.
        beside: write a new conversion next to the model (`model.onnx`) instead
            of into the cache; a current file is reused wherever it is.

    Raises:
        CatdogError: the conversion needs tf2onnx, or it failed.
    """
    model_file = Path(model_file).resolve()
    sha256 = file_sha256(model_file)
    found = current_onnx(model_file, sha256)
    if found is not None and (not beside or found == beside_path(model_file)):
        return found
    out = beside_path(model_file) if beside else cached_path(_cache_key(sha256, openset_sha256(model_file)))
    convert(model_file, out, sha256)
    return out


def write_onnx(run_dir: str | os.PathLike, logger=None) -> Path | None:
    """Write `model.onnx` beside a run's `model.keras`; a failure is logged, never raised.

    Training calls this once it has saved the model, so every finished run can
    be served by ONNX Runtime without converting it first.
    """
    model_file = Path(run_dir) / config.MODEL_FILENAME
    try:
        out = ensure_onnx(model_file, beside=True)
    except Exception as exc:  # noqa: BLE001 - an ONNX problem must never fail a finished training
        (logger or log.warning)(f"warning: no {ONNX_FILENAME} written ({exc}); prediction will use TensorFlow")
        return None
    (logger or log.info)(f"ONNX model for ONNX Runtime written to {out}")
    return out


def convert(model_file: str | os.PathLike, out: str | os.PathLike, sha256: str | None = None) -> Path:
    """Convert a `.keras` file to ONNX at `out` (atomically), with its record beside it.

    Raises:
        CatdogError: tf2onnx is missing, the model cannot be loaded, or conversion failed.
    """
    try:
        import tensorflow as tf
        import tf2onnx
    except ImportError as exc:
        raise CatdogError(f"ONNX conversion needs tf2onnx: `pip install tf2onnx onnxruntime` ({exc})") from exc

    from catdog import openset
    from catdog.models import load_keras, with_policy

    model_file, out = Path(model_file), Path(out)
    sha256 = sha256 or file_sha256(model_file)
    try:
        model = with_policy(load_keras(model_file, compile=False), "float32")
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a bad file
        raise CatdogError(f"cannot load model {str(model_file)!r}: {exc}") from exc
    size = int(model.input_shape[1])
    spec = (tf.TensorSpec((None, size, size, 3), tf.uint8, name="image"),)
    check_sha = openset_sha256(model_file)
    check = openset.OpenSet.load(openset.path_for(model_file)) if check_sha else None
    outputs = openset.inference_fn(model, check)

    @tf.function(input_signature=spec)
    def serve(image):
        p, score = outputs(tf.cast(image, tf.float32))
        if check is None:
            return tf.identity(p, name="p")
        return tf.identity(p, name="p"), tf.identity(score, name="not_pet_score")

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".onnx", dir=out.parent)
    os.close(fd)
    try:
        tf2onnx.convert.from_function(serve, input_signature=spec, opset=OPSET, output_path=tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except Exception as exc:  # noqa: BLE001 - the converter raises many types
        raise CatdogError(f"ONNX conversion of {str(model_file)!r} failed: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _write_record(out, model_file, sha256, size, tf.__version__, tf2onnx.__version__, check_sha, check)
    return out


def _write_record(
    out: Path, model_file: Path, sha256: str, size: int, tf_version: str, tf2onnx_version: str, check_sha: str | None = None, check=None
) -> None:
    settings = _read_settings(model_file.parent / "config.json")
    record = {
        "format": "onnx",
        "catdog_onnx_version": FORMAT_VERSION,
        "source": model_file.name if model_file.parent == out.parent else str(model_file),
        "source_sha256": sha256,
        "onnx_sha256": file_sha256(out),  # what `_is_current` checks the file against before serving it
        "openset_sha256": check_sha,
        "openset": check.summary() if check is not None else None,
        "image_size": size,
        "class_names": settings.get("class_names", list(config.CLASS_NAMES)),
        "threshold": settings.get("threshold", config.THRESHOLD),
        "calibration": settings.get("calibration"),
        "input": {
            "name": "image",
            "dtype": "uint8",
            "shape": [None, size, size, 3],
            "values": "RGB 0..255",
            "resize": "bilinear, squash to square",
        },
        "output": "P(class_names[1]) per image before calibration, shape (n,); calibrated = sigmoid(logit(p) / temperature)"
        + ("; second output not_pet_score, shape (n,): not a cat or dog when > openset.threshold" if check is not None else ""),
        "opset": OPSET,
        "converter": {"tensorflow": tf_version, "tf2onnx": tf2onnx_version},
    }
    path = record_path(out)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(record, indent=2) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _read_settings(path: Path) -> dict:
    try:
        settings = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return settings if isinstance(settings, dict) else {}


class OnnxModel:
    """An ONNX Runtime session for a catdog ONNX file; `__call__` maps a uint8 batch to P(class 1).

    A float32-input file (what `catdog export --format onnx` writes) works too.
    Calls are thread-safe: ONNX Runtime allows concurrent `run` on one session.
    """

    def __init__(self, onnx_file: str | os.PathLike, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: no informational lines on stderr
        if threads:
            options.intra_op_num_threads = int(threads)
        self.path = Path(onnx_file)
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for a bad file
            raise CatdogError(f"cannot load ONNX model {str(self.path)!r}: {exc}") from exc
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        self.input_dtype = np.uint8 if first.type == "tensor(uint8)" else np.float32
        self.image_size = first.shape[1] if isinstance(first.shape[1], int) else None
        self.has_openset = len(self.session.get_outputs()) > 1

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.outputs(batch)[0]

    def outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(P(class 1), the open-set score or None when the graph has none), each shape (n,)."""
        feed = {self.input_name: np.ascontiguousarray(batch, dtype=self.input_dtype)}
        out = self.session.run(None, feed)
        p = np.asarray(out[0], dtype=np.float32).reshape(-1)
        return p, (np.asarray(out[1], dtype=np.float64).reshape(-1) if len(out) > 1 else None)


def main(argv: list[str] | None = None) -> int:
    """`python -m catdog.onnx_runtime RUN_DIR...`: write a current model.onnx beside each model.keras."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m catdog.onnx_runtime", description=main.__doc__)
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folder holding model.keras (e.g. assets/model)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for run_dir in args.runs:
        print(ensure_onnx(Path(run_dir) / config.MODEL_FILENAME, beside=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
