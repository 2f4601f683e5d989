"""Prediction: find a model, load it once, classify images in batches.

A `Predictor` runs on ONNX Runtime when onnxruntime is installed and the model
has (or can be given) a current ONNX file (`catdog.onnx_runtime`), else on
TensorFlow; `Predictor.backend` says which. Nothing here imports TensorFlow at
module level, and the ONNX Runtime path never imports it once the ONNX file exists.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from catdog import config
from catdog.calibration import DEFAULT_TEMPERATURE, DEFAULT_UNCERTAIN_BELOW, apply_temperature
from catdog.errors import CatdogError, ImageError, RunError
from catdog.model_files import (  # noqa: F401 - also predict's API, as before they moved
    active_model_file,
    bundled_model_dir,
    check_model_file,
    default_model,
    model_choices,
    resolve_model,
    set_active_model,
)
from catdog.preprocess import ImageSource, load_array
from catdog.verdicts import verdict

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnxruntime", "tensorflow")
# Decoding threads for a batch: Pillow releases the GIL while it decodes and resizes.
DECODE_THREADS = max(1, min(4, os.cpu_count() or 1))
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


@dataclass
class Prediction:
    """One image's result: a label and P(dog), or an error."""

    file: str
    label: str | None = None
    p_dog: float | None = None
    confidence: float | None = None
    uncertain: bool = False
    not_pet: bool = False  # the model's open-set check says: not a cat or dog (label is then only the best guess)
    openset_score: float | None = None  # None: the model has no open-set check
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict:
        """The result as `catdog predict --json` prints it: `answer` is what catdog answered, `label` the best class."""
        if self.error is not None:
            return {"file": self.file, "error": self.error}
        return {
            "file": self.file,
            "answer": verdict(self),  # a class, "not sure" or "not a cat or dog"
            "label": self.label,
            "p_dog": round(self.p_dog, 6),
            "confidence": round(self.confidence, 6),
            "uncertain": self.uncertain,
            "not_pet": self.not_pet,
            "openset_score": None if self.openset_score is None else round(self.openset_score, 4),
        }


def resolve_whole(model: str | os.PathLike | None = None) -> tuple[Path, dict]:
    """`resolve_model`, where a run refused as not whole because its check changed says first what is wrong with that check.

    Raises:
        OpenSetError: the check beside the model is damaged (its own message: what and how to fix).
        RunError: as `resolve_model`.
    """
    from catdog.model_files import PartsDisagree

    try:
        return resolve_model(model)
    except PartsDisagree as exc:
        if exc.check is not None:
            from catdog.openset import OpenSet

            OpenSet.load(exc.check)  # raises OpenSetError for a damaged check
        raise


def calibration_of(settings: dict) -> tuple[float, float]:
    """(temperature, uncertain_below) saved with a model; (1.0, 0.75) when it has none."""
    saved = settings.get("calibration") if isinstance(settings.get("calibration"), dict) else {}
    temperature, below = saved.get("temperature", DEFAULT_TEMPERATURE), saved.get("uncertain_below", DEFAULT_UNCERTAIN_BELOW)
    try:
        temperature, below = float(temperature), float(below)
    except (TypeError, ValueError):
        return DEFAULT_TEMPERATURE, DEFAULT_UNCERTAIN_BELOW
    if not (np.isfinite(temperature) and temperature > 0):
        temperature = DEFAULT_TEMPERATURE
    if not 0.5 <= below <= 1.0:
        below = DEFAULT_UNCERTAIN_BELOW
    return temperature, below


class Predictor:
    """A loaded model with its class names, image size, threshold and calibration.

    `raw_probs` runs the network on ONNX Runtime or as a compiled `tf.function`
    (`backend` says which); `predict_arrays` adds the model's temperature
    scaling, the same for both. Calls are thread-safe. `model` is the Keras
    model (for Grad-CAM); on ONNX Runtime it is loaded on first use.
    """

    def __init__(
        self,
        model=None,
        class_names: Sequence[str] | None = None,
        image_size: int | None = None,
        threshold: float | None = None,
        source: str = "",
        temperature: float = DEFAULT_TEMPERATURE,
        uncertain_below: float = DEFAULT_UNCERTAIN_BELOW,
        onnx_model=None,
        keras_loader=None,
        openset=None,
    ):
        if model is None and onnx_model is None:
            raise ValueError("Predictor needs a Keras model or an onnx_model, got neither")
        self._model = model
        self._onnx = onnx_model
        self._keras_loader = keras_loader
        self.backend = "onnxruntime" if onnx_model is not None else "tensorflow"
        self.class_names = list(class_names or config.CLASS_NAMES)
        size = image_size or (model.input_shape[1] if model is not None else onnx_model.image_size)
        self.image_size = int(size)
        self.threshold = float(config.THRESHOLD if threshold is None else threshold)
        self.source = source
        self.temperature = float(temperature)
        self.uncertain_below = float(uncertain_below)
        self.openset = openset  # catdog.openset.OpenSet or None: "not a cat or dog" is then never said
        self._lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._fn = None

    @property
    def model(self):
        """The Keras model; loaded now if this predictor runs on ONNX Runtime."""
        with self._model_lock:
            if self._model is None and self._keras_loader is not None:
                self._model = self._keras_loader()
            return self._model

    @model.setter
    def model(self, value) -> None:
        self._model = value
        self._fn = None

    @property
    def onnx_file(self) -> str | None:
        """The ONNX file this predictor runs (None on TensorFlow)."""
        return str(self._onnx.path) if self._onnx is not None else None

    @classmethod
    def load(cls, model: str | os.PathLike | None = None, precision: str = "auto", backend: str | None = None) -> "Predictor":
        """Load a model (a run folder, a .keras file, or the default) once.

        Args:
            model: a run folder, run id or `.keras` file; None for the default model.
            precision: the dtype policy to compute in (`hardware.resolve_inference_precision`):
                a model trained in bfloat16 on an AMX machine runs in float32 elsewhere.
                ONNX Runtime computes in float32, so `auto` picks it only on a CPU.
            backend: `auto` (ONNX Runtime when installed and the model converts,
                else TensorFlow), `onnxruntime` or `tensorflow`; None reads
                `CATDOG_PREDICT_BACKEND` (default auto).

        Raises:
            RunError: no model, or one that cannot be loaded.
            ValueError: an unknown `backend`.
        """
        backend = backend or config.env_choice("CATDOG_PREDICT_BACKEND", BACKENDS, "auto")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        from catdog import openset as openset_module

        model_file, settings = resolve_whole(model)
        temperature, uncertain_below = calibration_of(settings)
        check = openset_module.load_for(model_file)
        common = dict(
            openset=check,
            class_names=settings.get("class_names"),
            image_size=settings.get("image_size"),
            threshold=settings.get("threshold"),
            source=str(model_file),
            temperature=temperature,
            uncertain_below=uncertain_below,
        )
        if backend == "onnxruntime" or (backend == "auto" and _float32_on_cpu(precision)):
            onnx_model = _onnx_model(model_file, required=backend == "onnxruntime", with_openset=check is not None)
            if onnx_model is not None:
                return cls(onnx_model=onnx_model, keras_loader=lambda: _load_keras(model_file, "float32"), **common)
        return cls(_load_keras(model_file, precision), **common)

    def _compiled(self):
        with self._lock:
            if self._fn is None:
                import tensorflow as tf

                from catdog.openset import inference_fn

                spec = tf.TensorSpec((None, self.image_size, self.image_size, 3), tf.uint8)
                outputs = inference_fn(self.model, self.openset)

                @tf.function(input_signature=[spec], reduce_retracing=True)
                def infer(x):
                    return outputs(tf.cast(x, tf.float32))

                self._fn = infer
            return self._fn

    def preprocess(self, source: ImageSource) -> np.ndarray:
        """The model input for one image: the shared preprocessing path."""
        return load_array(source, self.image_size)

    def predict_arrays(self, batch: np.ndarray) -> np.ndarray:
        """Calibrated P(class 1) for a uint8 batch (n, size, size, 3)."""
        return apply_temperature(self.raw_probs(batch), self.temperature)

    def raw_probs(self, batch: np.ndarray) -> np.ndarray:
        """The network's own P(class 1), before calibration."""
        return self.raw_outputs(batch)[0]

    def raw_outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(the network's own P(class 1), the open-set score or None without a check) for a uint8 batch."""
        batch = np.asarray(batch, dtype=np.uint8)
        if batch.ndim == 3:
            batch = batch[None]
        if batch.shape[1:] != (self.image_size, self.image_size, 3):
            raise ValueError(f"batch must have shape (n, {self.image_size}, {self.image_size}, 3), got {batch.shape}")
        if self._onnx is not None:
            p, score = self._onnx.outputs(batch)
        else:
            p, score = (np.asarray(t, np.float32) for t in self._compiled()(batch))
        return p, (np.asarray(score, np.float64) if self.openset is not None and score is not None else None)

    def is_not_pet(self, scores) -> np.ndarray:
        """Which open-set scores say "not a cat or dog" (all False without a check)."""
        if self.openset is None or scores is None:
            return np.zeros(np.shape(scores) if scores is not None else 0, bool)
        return self.openset.is_not_pet(scores)

    def predict(self, sources: Iterable[ImageSource], names: Sequence[str] | None = None, batch_size: int = 64) -> list[Prediction]:
        """Classify images; each bad file gets its own error, the rest still get results."""
        sources = list(sources)
        names = list(names) if names is not None else [_name_of(s, i) for i, s in enumerate(sources)]
        results: list[Prediction] = [Prediction(file=n) for n in names]
        arrays, index = [], []
        for i, decoded in enumerate(self._decode_all(sources)):
            if isinstance(decoded, Exception):
                results[i].error = str(decoded)
            else:
                arrays.append(decoded)
                index.append(i)
        for start in range(0, len(arrays), batch_size):
            raw, scores = self.raw_outputs(np.stack(arrays[start : start + batch_size]))
            probs = apply_temperature(raw, self.temperature)
            for k, (i, p) in enumerate(zip(index[start : start + batch_size], probs)):
                self._fill(results[i], float(p), None if scores is None else float(scores[k]))
        return results

    def _decode_all(self, sources: list[ImageSource]) -> list:
        """Each source's array, or the error it raised, in order; several decode on a thread pool."""

        def decode(source):
            try:
                return self.preprocess(source)
            except (ImageError, CatdogError) as exc:
                return exc

        if len(sources) < 2:
            return [decode(s) for s in sources]
        return list(_decode_pool().map(decode, sources))

    def predict_one(self, source: ImageSource, name: str | None = None) -> Prediction:
        return self.predict([source], [name or _name_of(source, 0)])[0]

    def label_for(self, p: float) -> str:
        return self.class_names[1] if p >= self.threshold else self.class_names[0]

    def prediction(self, name: str, p: float, score: float | None = None) -> Prediction:
        """The result for one image from its calibrated P(class 1) and open-set score (None without a check)."""
        result = Prediction(file=name)
        self._fill(result, p, score)
        return result

    def _fill(self, result: Prediction, p: float, score: float | None = None) -> None:
        if not np.isfinite(p):
            result.error = "the model returned NaN for this image; the model may be broken"
            return
        result.p_dog = p
        result.label = self.label_for(p)
        result.confidence = p if p >= self.threshold else 1.0 - p
        result.uncertain = result.confidence < self.uncertain_below
        if score is not None:
            result.openset_score = score
            result.not_pet = bool(not np.isfinite(score) or self.openset.is_not_pet(score))


def _decode_pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=DECODE_THREADS, thread_name_prefix="catdog-decode")
        return _POOL


def _float32_on_cpu(precision: str) -> bool:
    """Whether inference would compute in float32 on a CPU, decided without importing TensorFlow."""
    from catdog.hardware import gpu_device_present, requested_inference_precision

    precision = requested_inference_precision(precision)
    return precision == "float32" or (precision == "auto" and not gpu_device_present())


def _onnx_model(model_file: Path, required: bool, with_openset: bool = False):
    """An ONNX Runtime session for the model, converting it once if needed; None to fall back."""
    from catdog import onnx_runtime

    if not onnx_runtime.onnxruntime_available():
        if required:
            raise RunError("the onnxruntime backend needs onnxruntime: `pip install onnxruntime`")
        return None
    try:
        onnx = onnx_runtime.OnnxModel(onnx_runtime.ensure_onnx(model_file))
        if with_openset and not onnx.has_openset:
            raise CatdogError(f"{onnx.path} has no open-set output; rewrite it with `python -m catdog.onnx_runtime {model_file.parent}`")
        return onnx
    except (CatdogError, OSError) as exc:
        if required:
            raise RunError(f"cannot run {str(model_file)!r} on ONNX Runtime: {exc}") from exc
        log.warning("ONNX Runtime unavailable for %s (%s); using TensorFlow", model_file, exc)
        return None


def _load_keras(model_file: Path, precision: str):
    """The Keras model computing in `precision` (see `hardware.resolve_inference_precision`)."""

    from catdog.hardware import resolve_inference_precision
    from catdog.models import load_keras, with_policy

    policy = resolve_inference_precision(precision)
    try:
        return with_policy(load_keras(model_file, compile=False), policy)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a bad file
        raise RunError(f"cannot load model {str(model_file)!r}: {exc}; retrain it or pick another run") from exc


def _name_of(source, i: int) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return getattr(source, "name", None) or f"image {i + 1}"
