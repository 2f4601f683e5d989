"""The open-set check: "not a cat or dog".

A two-class network answers "cat" or "dog" for anything, a coffee cup included.
The check asks instead how far a photo's features lie from the photos the model
was trained on. It reads the network at several depths: the global average of
the last layer at each spatial resolution (early layers see colour and texture,
late ones shapes), and measures at each depth the Mahalanobis distance to the
nearest class mean (tied covariance with shrinkage, as in Lee et al. 2018,
"A simple unified framework for detecting out-of-distribution samples").
Each depth's distance is standardised on held-out training photos, and the
average of the standardised distances is the photo's score. A photo whose
score is above `threshold` is "not a cat or dog".

The threshold is picked on the *training* side: the score that flags at most
`flag_rate` (default 2%) of held-out training pets. No photo of a non-pet is
needed; when negatives are given (`not-pets`, or a user's own), they are only
reported, never used to move the threshold, so the check carries over to kinds
it never saw (measured in docs/openset.md).

The score is computed inside the inference graph (`scores_tf`), so TensorFlow,
ONNX Runtime and every export give the same answer; `OpenSet.score` is the
NumPy reference. Nothing here imports TensorFlow at module level.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from catdog.errors import CatdogError
from catdog.model_files import OPENSET_FILENAME  # noqa: F401 - where a model keeps its check
from catdog.model_files import openset_path as path_for

FORMAT_VERSION = 2  # 2 adds the ImageNet part (logits_layer, pet_classes) and `distance`; version 1 files still load
READABLE_VERSIONS = (1, 2)
DEFAULT_FLAG_RATE = 0.02  # share of held-out training pets the check may flag
# The ImageNet part's share: its held-out 2% flagged 2.5% of catdog-small/validation's full-size photos, 1% flags
# 1.1-1.3% of them and still 97-98% of clothing and 100% of objects (benchmarks/lite0_design.py).
IMAGENET_FLAG_RATE = 0.01
SHRINKAGE = 0.1  # covariance shrinkage toward a scaled identity: stable with few photos per dimension
MIN_FIT_PHOTOS = 20
METHOD = "multi-layer Mahalanobis distance to the training photos' class means"
IMAGENET_METHOD = "ImageNet: the summed probability of ImageNet's cat and dog classes"
PART_WORDS = {"imagenet": "ImageNet cat and dog classes", "head": "pet-or-not head on every depth's features", "distance": "distance"}


@dataclass
class OpenSet:
    """A fitted open-set check: per-layer class means, whitening matrices and standardisation.

    Attributes:
        layers: the feature layers' names, in the order of `means` and `whiten`.
        means: per layer, the class means, shape (classes, d).
        whiten: per layer, W with W @ W.T = the inverse shrunk covariance, shape (d, d).
        centre, scale: per layer, the mean and standard deviation of the held-out
            training photos' squared distances.
        threshold: scores above it are "not a cat or dog".
        info: what was fitted on, and the measured flag rates.
    """

    layers: list[str]
    means: list[np.ndarray]
    whiten: list[np.ndarray]
    centre: np.ndarray
    scale: np.ndarray
    threshold: float
    info: dict = field(default_factory=dict)
    # A pet-or-not head fitted with negatives (`fit_head`) on every depth's features; it replaces the distance.
    head_w: np.ndarray | None = None
    head_b: float = 0.0
    # Standardisation of the score's parts on held-out training photos, one value per part (`part_names`).
    part_centre: np.ndarray = field(default_factory=lambda: np.zeros(1))
    part_scale: np.ndarray = field(default_factory=lambda: np.ones(1))
    # The ImageNet part (a pretrained backbone): -log of the summed probability of `pet_classes` in the
    # 1000 logits of layer `logits_layer`. No photo of a non-pet is needed for it.
    logits_layer: str | None = None
    pet_classes: np.ndarray | None = None
    # Whether the distance to the class means is a part (without a head); a check of cats and dogs on
    # ImageNet features leaves it out (measured: it flagged no more non-pets; docs/openset.md).
    distance: bool = True

    @property
    def read_layers(self) -> list[str]:
        """The layers whose outputs the score reads: `layers`, then the logits layer when there is one."""
        return [*self.layers, *([self.logits_layer] if self.logits_layer else [])]

    @property
    def part_names(self) -> list[str]:
        names = ["imagenet"] if self.pet_classes is not None else []
        if self.head_w is not None:
            return [*names, "head"]
        return [*names, "distance"] if self.distance and self.layers else names

    def _split(self, features: Sequence[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray | None]:
        features = list(features)
        return (features[:-1], features[-1]) if self.logits_layer else (features, None)

    def layer_distances(self, features: Sequence[np.ndarray]) -> np.ndarray:
        """Squared Mahalanobis distance to the nearest class mean, per layer: shape (n, layers)."""
        out = []
        for f, mu, w in zip(features, self.means, self.whiten):
            fw = np.asarray(f, np.float64) @ w
            muw = mu @ w
            d = ((fw[:, None, :] - muw[None, :, :]) ** 2).sum(-1)
            out.append(d.min(axis=1))
        return np.stack(out, axis=1)

    def parts(self, features: Sequence[np.ndarray]) -> np.ndarray:
        """Per photo, each part of the score (`part_names`): shape (n, parts).

        `features` are the outputs of `read_layers`. The parts: the ImageNet part
        (-log P(a cat or dog class)), then the head's not-a-pet logit when there is a
        head, else the mean standardised distance (when `distance`).
        """
        feats, logits = self._split(features)
        cols = []
        if self.pet_classes is not None:
            cols.append(not_pet_logprob(logits, self.pet_classes))
        if self.head_w is not None:
            cols.append(np.concatenate([np.asarray(f, np.float64) for f in feats], axis=1) @ self.head_w + self.head_b)
        elif self.distance and self.layers:
            cols.append(((self.layer_distances(feats) - self.centre) / self.scale).mean(axis=1))
        return np.stack(cols, axis=1)

    def score(self, features: Sequence[np.ndarray]) -> np.ndarray:
        """The open-set score per photo (higher = less like the training photos), standardised on held-out training photos."""
        return ((self.parts(features) - self.part_centre) / self.part_scale).max(axis=1)

    def is_not_pet(self, scores) -> np.ndarray:
        return np.asarray(scores) > self.threshold

    def summary(self) -> dict:
        """What config.json and sidecars record (the arrays stay in openset.npz)."""
        method = " + ".join(IMAGENET_METHOD if p == "imagenet" else "pet-or-not head" if p == "head" else METHOD
                            for p in self.part_names)
        return {"method": method, "parts": self.part_names, "layers": list(self.read_layers),
                "threshold": round(float(self.threshold), 6), **self.info}

    def to_bytes(self) -> bytes:
        arrays = {"centre": self.centre, "scale": self.scale, "threshold": np.float64(self.threshold),
                  "part_centre": self.part_centre, "part_scale": self.part_scale}
        if self.head_w is not None:
            arrays.update(head_w=self.head_w, head_b=np.float64(self.head_b))
        if self.pet_classes is not None:
            arrays["pet_classes"] = np.asarray(self.pet_classes, np.int64)
        for i, (mu, w) in enumerate(zip(self.means, self.whiten)):
            arrays[f"mean_{i}"], arrays[f"whiten_{i}"] = mu, w
        meta = {"version": FORMAT_VERSION, "layers": self.layers, "info": self.info,
                "logits_layer": self.logits_layer, "distance": self.distance}
        buf = io.BytesIO()
        np.savez(buf, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
        return buf.getvalue()

    def save(self, path: str | os.PathLike) -> Path:
        """Write the check atomically (a reader never sees half a file)."""
        from catdog.atomic import atomic_write_bytes

        path = Path(path)
        atomic_write_bytes(path, self.to_bytes())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "OpenSet":
        """Read a saved check, validating everything before it is used (the file is untrusted input).

        The file's size and each array's shape and dtype are checked from the headers,
        before any array is read; then the values: finite, of consistent shapes, and a
        threshold in a sane range. A check that does not pass is refused whole.

        Raises:
            OpenSetError: the file is not a valid catdog open-set file; the message names it and says what to do.
        """
        path = Path(path)
        try:
            check = cls._read(path)
            check.validate()
            return check
        except OpenSetError as exc:
            hint = FIX_HINT.format(run=path.parent)
            raise OpenSetError(f"the 'not a cat or dog' check {str(path)!r} is unusable: {exc}; {hint}") from None
        except (OSError, KeyError, ValueError, TypeError, AttributeError, EOFError, zipfile.BadZipFile, json.JSONDecodeError,
                UnicodeDecodeError, OverflowError, struct.error) as exc:
            raise OpenSetError(f"the 'not a cat or dog' check {str(path)!r} is unreadable ({type(exc).__name__}: {exc}); "
                               f"{FIX_HINT.format(run=path.parent)}") from None

    @classmethod
    def _read(cls, path: Path) -> "OpenSet":
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise OpenSetError(f"it is {size / 1e6:.0f} MB, over the {MAX_FILE_BYTES / 1e6:.0f} MB such a file can be")
        _check_headers(path)
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            if not isinstance(meta, dict):
                raise OpenSetError(f"its meta record is a {type(meta).__name__}, not an object")
            if meta.get("version") not in READABLE_VERSIONS:
                raise OpenSetError(f"version {meta.get('version')!r} is not one of {READABLE_VERSIONS}")
            layers, logits_layer, info = meta.get("layers"), meta.get("logits_layer"), meta.get("info") or {}
            if not (isinstance(layers, list) and all(isinstance(n, str) for n in layers) and len(layers) <= MAX_LAYERS):
                raise OpenSetError(f"'layers' must be a list of layer names, got {layers!r:.80}")
            if not (logits_layer is None or isinstance(logits_layer, str)) or not isinstance(info, dict):
                raise OpenSetError("'logits_layer' or 'info' has the wrong type")
            n = len(layers)
            scalar = lambda key, default=None: float(_array(z, key, 0)) if key in z else default  # noqa: E731
            return cls(
                layers=list(layers),
                # A check with a head (or only the ImageNet part) keeps no class statistics.
                means=[_array(z, f"mean_{i}", 2) for i in range(n) if f"mean_{i}" in z],
                whiten=[_array(z, f"whiten_{i}", 2) for i in range(n) if f"whiten_{i}" in z],
                centre=_array(z, "centre", 1),
                scale=_array(z, "scale", 1),
                threshold=scalar("threshold"),
                info=dict(info),
                head_w=_array(z, "head_w", 1) if "head_w" in z else None,
                head_b=scalar("head_b", 0.0),
                # Checks saved before the head existed have no part statistics: 0 and 1 keep their scores and threshold.
                part_centre=_array(z, "part_centre", 1) if "part_centre" in z else np.zeros(1),
                part_scale=_array(z, "part_scale", 1) if "part_scale" in z else np.ones(1),
                logits_layer=logits_layer,
                pet_classes=_array(z, "pet_classes", 1, integer=True) if "pet_classes" in z else None,
                distance=bool(meta.get("distance", True)),
            )

    def validate(self) -> None:
        """Refuse a check whose arrays disagree in shape, are not finite, or whose threshold cannot be meant.

        Raises:
            OpenSetError: what is wrong.
        """
        if not (np.isfinite(self.threshold) and abs(self.threshold) <= MAX_THRESHOLD):
            raise OpenSetError(f"its threshold {self.threshold!r} is not a finite score (scores are standardised: "
                               f"within ±{MAX_THRESHOLD:g})")
        if not np.isfinite(self.head_b):
            raise OpenSetError("its head's bias is not finite")
        parts = self.part_names
        if not parts:
            raise OpenSetError("it has no part to score with")
        for name, value in (("part_centre", self.part_centre), ("part_scale", self.part_scale)):
            if value.shape != (len(parts),):
                raise OpenSetError(f"{name} has shape {value.shape}, the check has {len(parts)} part(s)")
        if np.any(self.part_scale <= 0):
            raise OpenSetError("a part's scale is not positive")
        if self.pet_classes is not None:
            if not self.logits_layer or not len(self.pet_classes) or np.any((self.pet_classes < 0) | (self.pet_classes >= 1000)):
                raise OpenSetError("its ImageNet classes are not indices of the 1000 ImageNet classes, or it names no logits layer")
        if self.head_w is None and self.distance and self.layers:
            self._validate_distance()

    def _validate_distance(self) -> None:
        n = len(self.layers)
        if len(self.means) != n or len(self.whiten) != n or self.centre.shape != (n,) or self.scale.shape != (n,):
            raise OpenSetError(f"it has {len(self.means)} class means and {len(self.whiten)} whitening matrices for {n} layer(s)")
        for mu, w in zip(self.means, self.whiten):
            if mu.shape[1] != w.shape[0] or w.shape[0] != w.shape[1] or mu.shape[0] < 1:
                raise OpenSetError(f"class means {mu.shape} and whitening {w.shape} do not fit together")
        if np.any(self.scale <= 0):
            raise OpenSetError("a layer's scale is not positive")


class OpenSetError(CatdogError, ValueError):
    """A saved open-set check is missing parts, damaged, oversized or inconsistent."""


FIX_HINT = ("refit it with `catdog openset fit {run}`, or move the file away to use the model without the "
            "'not a cat or dog' check (it then answers cat or dog for anything)")
MAX_FILE_BYTES = 64 * 1024 * 1024  # a 1280-d distance check is 13 MB; nothing real comes near this
MAX_ARRAY_VALUES = 4 * 1024 * 1024  # per array, read from its header before the array is read
MAX_LAYERS = 16
MAX_THRESHOLD = 1e3


def _check_headers(path: Path) -> None:
    """Every member of the .npz: a .npy whose header gives a numeric dtype and a bounded size (read before any data)."""
    with zipfile.ZipFile(path) as zf:
        members = zf.infolist()
        if len(members) > 4 * MAX_LAYERS + 16:
            raise OpenSetError(f"it holds {len(members)} arrays")
        for info in members:
            with zf.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = read_header(fh)
            count = int(np.prod(shape, dtype=np.int64)) if shape else 1
            if dtype.hasobject or dtype.kind not in "biuf" or count > MAX_ARRAY_VALUES:
                raise OpenSetError(f"array {info.filename!r} is {dtype} of shape {shape}: not a numeric array of a sane size")


def _array(z, key: str, ndim: int, integer: bool = False) -> np.ndarray:
    value = np.asarray(z[key])
    if value.ndim != ndim:
        raise OpenSetError(f"{key!r} has {value.ndim} dimensions, not {ndim}")
    if integer:
        if value.dtype.kind not in "iu":
            raise OpenSetError(f"{key!r} must hold integers")
        return value.astype(np.int64)
    value = value.astype(np.float64)
    if not np.all(np.isfinite(value)):
        raise OpenSetError(f"{key!r} holds values that are not finite (NaN or infinity)")
    return value


def class_statistics(features: np.ndarray, labels: np.ndarray, shrinkage: float = SHRINKAGE) -> tuple[np.ndarray, np.ndarray]:
    """Class means and the whitening matrix of the tied, shrunk covariance.

    Args:
        features: (n, d) features of training photos.
        labels: (n,) integer class labels.
        shrinkage: weight of the scaled identity in the covariance (0 = none).
    """
    features = np.asarray(features, np.float64)
    classes = np.unique(labels)
    means = np.stack([features[labels == c].mean(axis=0) for c in classes])
    centred = features - means[np.searchsorted(classes, labels)]
    cov = centred.T @ centred / max(len(features) - len(classes), 1)
    d = cov.shape[0]
    cov = (1 - shrinkage) * cov + shrinkage * (np.trace(cov) / d + 1e-12) * np.eye(d)
    # W = L^-T for cov = L L^T, so |(f - mu) W|^2 is the squared Mahalanobis distance.
    chol = np.linalg.cholesky(cov)
    whiten = np.linalg.inv(chol).T
    return means, whiten


def fit(
    fit_features: Sequence[np.ndarray],
    fit_labels: np.ndarray,
    held_out_features: Sequence[np.ndarray],
    layers: Sequence[str],
    flag_rate: float = DEFAULT_FLAG_RATE,
    negative_features: Sequence[np.ndarray] | None = None,
    logits_layer: str | None = None,
    pet_classes: Sequence[int] | None = None,
    distance: bool = True,
) -> OpenSet:
    """Fit the check on training photos; standardise and pick the threshold on held-out training photos.

    With `logits_layer` and `pet_classes`, the last array of each feature list is that
    layer's ImageNet logits, and the ImageNet part joins the score.

    Args:
        fit_features: per layer, (n, d) features of the photos the model trained on.
        fit_labels: their class labels.
        held_out_features: per layer, features of held-out training photos (never the
            photos that are reported on); they set the standardisation and the threshold.
        layers: the feature layers' names.
        flag_rate: the share of held-out training pets the threshold may flag.
        negative_features: per layer, features of photos with no cat or dog; when given, a
            pet-or-not head (`fit_head`) is the score instead of the distance. They never set the threshold.

    Raises:
        ValueError: too few photos, or a bad `flag_rate`.
    """
    if not 0.0 < flag_rate < 0.5:
        raise ValueError(f"flag_rate must be between 0 and 0.5, got {flag_rate!r}")
    n_fit, n_held = len(fit_labels), len(held_out_features[0]) if held_out_features else 0
    if n_fit < MIN_FIT_PHOTOS or n_held < MIN_FIT_PHOTOS // 2:
        raise ValueError(
            f"the open-set check needs at least {MIN_FIT_PHOTOS} training and {MIN_FIT_PHOTOS // 2} held-out photos, "
            f"got {n_fit} and {n_held}"
        )
    fit_labels = np.asarray(fit_labels)
    check = OpenSet(list(layers), [], [], np.zeros(len(layers)), np.ones(len(layers)), 0.0, logits_layer=logits_layer,
                    pet_classes=None if pet_classes is None else np.asarray(pet_classes, np.int64), distance=distance)
    fit_feats, _ = check._split(fit_features)
    held_feats, _ = check._split(held_out_features)
    if negative_features is not None and len(negative_features[0]):
        check.head_w, check.head_b = fit_head(fit_feats, check._split(negative_features)[0])
    elif distance and layers:
        stats = [class_statistics(f, fit_labels) for f in fit_feats]
        check.means, check.whiten = [m for m, _ in stats], [w for _, w in stats]
        held = check.layer_distances(held_feats)
        check.centre, check.scale = held.mean(axis=0), held.std(axis=0) + 1e-9
    if not check.part_names:
        raise ValueError("the open-set check needs a part: ImageNet classes, negatives or the feature distance")
    parts = check.parts(held_out_features)
    check.part_centre, check.part_scale = parts.mean(axis=0), parts.std(axis=0) + 1e-9
    scores = check.score(held_out_features)
    check.threshold = float(np.quantile(scores, 1.0 - flag_rate))
    check.info = {
        "fitted_on": int(n_fit),
        "threshold_from": int(n_held),
        "flag_rate_target": flag_rate,
        "held_out_flagged": round(float(np.mean(scores > check.threshold)), 5),
        "score": " + ".join(PART_WORDS[p] for p in check.part_names),
    }
    return check


# --- the network's features ----------------------------------------------------


def feature_layer_names(model) -> list[str]:
    """The layers whose global averages the check reads.

    The last layer at each spatial resolution after the first layer with weights
    (in-model augmentation and rescaling come before it), and, when it is not
    already the global average of one of them, the vector the output layer reads.
    """
    from catdog.models.layers import OUTPUT_NAME

    chosen: dict[tuple, str] = {}
    started = False
    for layer in model.layers:
        started = started or bool(layer.weights)
        shape = getattr(layer, "output", None) is not None and tuple(layer.output.shape)
        if started and shape and len(shape) == 4:
            chosen[shape[1:3]] = layer.name
    names = list(chosen.values())
    head = _source_layer(model.get_layer(OUTPUT_NAME))
    skip = (
        head.__class__.__name__ == "GlobalAveragePooling2D" and _source_layer(head, through_dropout=False).name in names
    )
    if not skip and len(head.output.shape) == 2:
        names.append(head.name)
    return names


def _source_layer(layer, through_dropout: bool = True):
    """The layer that feeds `layer` (walking back through Dropout layers)."""
    node = layer._inbound_nodes[0]
    source = node.parent_nodes[0].operation if node.parent_nodes else None
    while through_dropout and source is not None and source.__class__.__name__ == "Dropout":
        source = source._inbound_nodes[0].parent_nodes[0].operation
    return source


def feature_tensors(model, layers: Sequence[str]) -> list:
    """Keras tensors: the global average of each named layer's output (a 2-D output as it is)."""
    import keras

    out = []
    for name in layers:
        t = model.get_layer(name).output
        out.append(keras.ops.mean(t, axis=(1, 2)) if len(t.shape) == 4 else t)
    return out


def feature_model(model, layers: Sequence[str] | None = None):
    """A Keras model: image -> [P(class 1), features of each layer] (inference mode)."""
    import keras

    layers = list(layers or feature_layer_names(model))
    return keras.Model(model.input, [model.outputs[0], *feature_tensors(model, layers)], name=f"{model.name}_features")


def extract(model, images: np.ndarray, layers: Sequence[str] | None = None, batch_size: int = 64) -> tuple[np.ndarray, list[np.ndarray]]:
    """(raw P(class 1), per-layer features) of uint8 images, in batches, without augmentation."""
    fm = feature_model(model, layers)
    probs, feats = [], []
    for start in range(0, len(images), batch_size):
        out = fm(np.asarray(images[start : start + batch_size], np.float32), training=False)
        probs.append(np.asarray(out[0], np.float64).reshape(-1))
        feats.append([np.asarray(o, np.float64) for o in out[1:]])
    feats = [np.concatenate(per_layer) for per_layer in zip(*feats)]
    return np.concatenate(probs), feats


def scores_tf(features: Sequence, check: OpenSet):
    """The open-set score in TensorFlow ops, from the outputs of `check.read_layers` (same math as `OpenSet.score`)."""
    import tensorflow as tf

    feats, logits = check._split(features)
    parts = []
    if check.pet_classes is not None:
        z = tf.cast(logits, tf.float32)
        pets = tf.gather(z, tf.constant(np.asarray(check.pet_classes, np.int32)), axis=1)
        parts.append(tf.reduce_logsumexp(z, axis=1) - tf.reduce_logsumexp(pets, axis=1))
    if check.head_w is not None:
        x = tf.concat([tf.cast(f, tf.float32) for f in feats], axis=1)
        parts.append(tf.reshape(tf.matmul(x, tf.constant(check.head_w.reshape(-1, 1), tf.float32)), (-1,)) + float(check.head_b))
    elif check.distance and check.layers:
        zs = []
        for i, f in enumerate(feats):
            w = tf.constant(check.whiten[i], tf.float32)
            muw = tf.constant(check.means[i] @ check.whiten[i], tf.float32)
            fw = tf.matmul(tf.cast(f, tf.float32), w)
            d = tf.reduce_sum(tf.square(fw[:, None, :] - muw[None, :, :]), axis=-1)
            zs.append((tf.reduce_min(d, axis=1) - float(check.centre[i])) / float(check.scale[i]))
        parts.append(tf.reduce_mean(tf.stack(zs, axis=1), axis=1))
    centre = tf.constant(np.asarray(check.part_centre, np.float32))
    scale = tf.constant(np.asarray(check.part_scale, np.float32))
    return tf.reduce_max((tf.stack(parts, axis=1) - centre) / scale, axis=1)


def not_pet_logprob(logits, pet_classes) -> np.ndarray:
    """-log of the summed softmax probability of `pet_classes`, per photo (NumPy; `scores_tf` computes the same)."""
    z = np.asarray(logits, np.float64)
    return _logsumexp(z) - _logsumexp(z[:, np.asarray(pet_classes, np.int64)])


def _logsumexp(z: np.ndarray) -> np.ndarray:
    top = z.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(z - top).sum(axis=1, keepdims=True)))[:, 0]


def inference_fn(model, check: OpenSet | None) -> Callable:
    """`f(float32 images) -> (P(class 1) (n,), open-set score (n,))` on TensorFlow; the score is 0 without a check."""
    import tensorflow as tf

    if check is None:

        def plain(x):
            p = tf.reshape(tf.cast(model(x, training=False), tf.float32), (-1,))
            return p, tf.zeros_like(p)

        return plain
    fm = feature_model(model, check.read_layers)

    def with_check(x):
        out = fm(x, training=False)
        return tf.reshape(tf.cast(out[0], tf.float32), (-1,)), scores_tf(out[1:], check)

    return with_check


MAX_FIT_PHOTOS = 4000  # class means and covariances settle well before this; more only costs time
MAX_HELD_OUT = 2000


def fit_on_images(
    model,
    fit_images: np.ndarray,
    fit_labels: np.ndarray,
    held_images: np.ndarray,
    negatives: dict[str, np.ndarray] | None = None,
    flag_rate: float | None = None,
    held_out_source: str = "held-out training photos",
    seed: int = 0,
    log: Callable[[str], None] = print,
    class_names: Sequence[str] | None = None,
) -> OpenSet:
    """Fit the check of a Keras model on decoded uint8 photos (training side only).

    A model with a pretrained backbone goes to `fit_on_features` (`class_names` says whether it is cats and dogs).

    Args:
        model: the trained Keras model.
        fit_images, fit_labels: photos the model trained on (a seeded sample of at most `MAX_FIT_PHOTOS` is used).
        held_images: held-out photos of the same classes: they set the threshold.
        negatives: named sets of photos with no cat or dog: the pet-or-not head is fitted on them
            (`fit_head`); they never move the threshold. The share of them flagged is recorded
            (a fitting figure: docs/openset.md measures kinds the head never saw).
        flag_rate: the share of `held_images` the threshold may flag (default: `DEFAULT_FLAG_RATE`, or
            for a pretrained backbone what `fit_on_features` chooses).
        held_out_source: what `held_images` are, for the record.
    """
    if pretrained_parts(model) is not None:
        layer = [pretrained_parts(model)[0]]
        feats = lambda images: extract(model, images, layer)[1][0]  # noqa: E731
        return fit_on_features(model, feats(fit_images), fit_labels, feats(held_images), class_names or ("cat", "dog"),
                               {name: feats(images) for name, images in (negatives or {}).items() if len(images)},
                               flag_rate, held_out_source, seed, log)
    rng = np.random.default_rng(seed)
    pick = lambda n, cap: np.sort(rng.choice(n, cap, replace=False)) if n > cap else np.arange(n)  # noqa: E731
    fit_idx, held_idx = pick(len(fit_images), MAX_FIT_PHOTOS), pick(len(held_images), MAX_HELD_OUT)
    layers = feature_layer_names(model)
    _, fit_feats = extract(model, _rows(fit_images, fit_idx), layers)
    _, held_feats = extract(model, _rows(held_images, held_idx), layers)
    neg_feats = {name: extract(model, images, layers)[1] for name, images in (negatives or {}).items() if len(images)}
    pooled = [np.concatenate(per_layer) for per_layer in zip(*neg_feats.values())] if neg_feats else None
    check = fit(fit_feats, np.asarray(fit_labels)[fit_idx], held_feats, layers, flag_rate or DEFAULT_FLAG_RATE, pooled)
    check.info["threshold_from_source"] = held_out_source
    for name, feats in neg_feats.items():
        check.info.setdefault("negatives_flagged", {})[name] = round(float(check.is_not_pet(check.score(feats)).mean()), 4)
        check.info.setdefault("negatives", {})[name] = len(feats[0])
    _say_fitted(check, len(fit_idx), len(held_idx), f"{held_out_source} ({len(layers)} depths)", log)
    return check


def pretrained_parts(model) -> tuple[str, str] | None:
    """(feature layer, ImageNet logits layer) of a model with a pretrained backbone (`lite0`), else None."""
    from catdog.models.lite0 import FEATURES, IMAGENET

    names = {layer.name for layer in model.layers}
    return (FEATURES, IMAGENET) if {FEATURES, IMAGENET} <= names else None


def is_cats_and_dogs(class_names: Sequence[str]) -> bool:
    """Whether a model's two classes are cats and dogs (ImageNet's pet classes then say what a pet is)."""
    return sorted(str(n).strip().lower().rstrip("s") for n in class_names) == ["cat", "dog"]


def fit_on_features(
    model,
    fit_features: np.ndarray,
    fit_labels: np.ndarray,
    held_features: np.ndarray,
    class_names: Sequence[str],
    negatives: dict[str, np.ndarray] | None = None,
    flag_rate: float | None = None,
    held_out_source: str = "held-out training photos",
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> OpenSet:
    """The check of a model with a pretrained backbone, from its photos' pooled features (no photo decoded).

    A model of cats and dogs scores photos by ImageNet's cat and dog classes (needs no
    negatives); a model of two other classes by the distance of the features to its
    classes' means. Negatives add a pet-or-not head on the features (to either).
    The threshold flags `flag_rate` of `held_features` (held-out training photos).

    Args:
        model: the Keras model (its `imagenet` layer's weights give the logits of the features).
        fit_features, fit_labels: features of the photos it trained on, and their labels.
        held_features: features of held-out photos of the same classes.
        class_names: the model's classes.
        negatives: {name: features} of photos with no cat or dog.
        flag_rate: the share of held-out photos flagged (default: `IMAGENET_FLAG_RATE` for cats and dogs, else `DEFAULT_FLAG_RATE`).
    """
    feature_layer, logits_layer = pretrained_parts(model)
    kernel, bias = (np.asarray(w, np.float64) for w in model.get_layer(logits_layer).get_weights())
    pets = is_cats_and_dogs(class_names)
    flag_rate = flag_rate if flag_rate is not None else IMAGENET_FLAG_RATE if pets else DEFAULT_FLAG_RATE
    rng = np.random.default_rng(seed)
    pick = lambda n, cap: np.sort(rng.choice(n, cap, replace=False)) if n > cap else np.arange(n)  # noqa: E731
    fit_idx, held_idx = pick(len(fit_features), MAX_FIT_PHOTOS), pick(len(held_features), MAX_HELD_OUT)
    negs = {name: np.asarray(f, np.float64) for name, f in (negatives or {}).items() if len(f)}
    use_layer = bool(negs) or not pets

    def inputs(f: np.ndarray) -> list[np.ndarray]:
        f = np.asarray(f, np.float64)
        return [*([f] if use_layer else []), *([f @ kernel + bias] if pets else [])]

    pooled = inputs(np.concatenate(list(negs.values()))) if negs else None
    check = fit(inputs(fit_features[fit_idx]), np.asarray(fit_labels)[fit_idx], inputs(held_features[held_idx]),
                [feature_layer] if use_layer else [], flag_rate, pooled, logits_layer=logits_layer if pets else None,
                pet_classes=_pet_classes() if pets else None, distance=not pets)
    check.info["threshold_from_source"] = held_out_source
    for name, f in negs.items():
        check.info.setdefault("negatives_flagged", {})[name] = round(float(check.is_not_pet(check.score(inputs(f))).mean()), 4)
        check.info.setdefault("negatives", {})[name] = len(f)
    _say_fitted(check, len(fit_idx), len(held_idx), held_out_source, log)
    return check


def _pet_classes() -> tuple[int, ...]:
    from catdog.models.lite0 import PET_CLASSES

    return PET_CLASSES


def _say_fitted(check: OpenSet, n_fit: int, n_held: int, held_out_source: str, log: Callable[[str], None]) -> None:
    flagged = check.info.get("negatives_flagged", {})
    log(
        f"Open-set check ('not a cat or dog', {check.info['score']}): fitted on {n_fit} training photos; threshold "
        f"{check.threshold:.3f} flags {check.info['held_out_flagged']:.1%} of {n_held} {held_out_source}"
        + "".join(f"; flags {share:.1%} of {name} (fitted on them)" for name, share in flagged.items())
    )


def fit_for_training(model, prepared, negatives: Sequence[str] = (), seed: int = 0, log: Callable[[str], None] = print) -> OpenSet | None:
    """The check of a model that has just trained, from its own photos (None, said in the log, when there are too few).

    Args:
        model: the trained Keras model.
        prepared: the training's photos (`catdog.training.PreparedData`): fitted on its training
            photos; the threshold comes from its calibration hold-out, or, without one, from its
            validation photos (said in the record).
        negatives: folders of photos with no cat or dog (the run's `--negatives`).
    """
    from catdog import data

    held, source = prepared.calibration, "held-out training photos (the run's calibration photos)"
    if held is None or len(held) < MIN_FIT_PHOTOS // 2:
        held, source = prepared.validation, "the run's validation photos (no calibration hold-out)"
    if len(prepared.train) < MIN_FIT_PHOTOS or len(held) < MIN_FIT_PHOTOS // 2:
        log(
            f"No open-set check: it needs at least {MIN_FIT_PHOTOS} training and {MIN_FIT_PHOTOS // 2} held-out photos "
            f"(this run has {len(prepared.train)} and {len(held)}); the model will never say 'not a cat or dog'"
        )
        return None
    size = int(model.input_shape[1])
    negs = {}
    for folder in negatives or ():
        files = data.image_files(folder)
        negs[Path(folder).name] = data.decode_images(data.ImageSet(files, [0] * len(files)), size).images
    return fit_on_images(model, prepared.train.images, prepared.train.labels, held.images, negs, held_out_source=source, seed=seed,
                         log=log, class_names=prepared.class_names)


def _rows(images, idx: np.ndarray) -> np.ndarray:
    return np.stack([np.asarray(images[i]) for i in idx]) if len(idx) else np.zeros((0, *np.shape(images)[1:]), np.uint8)


def fit_for_model(
    model: str | os.PathLike | None,
    folders: Sequence[str] | None = None,
    negatives: Sequence[str] | None = None,
    flag_rate: float | None = None,
    log: Callable[[str], None] = print,
) -> tuple[OpenSet, Path]:
    """(Re)fit the check of a saved model from its training photos and save it beside the model.

    With the run's own training folders (the default), the threshold is set on the
    run's calibration hold-out, re-drawn from its seed exactly as training drew it.
    The model's `model.onnx` is then stale (its graph computes the score): the
    ONNX cache sees the new check's hash and converts again, and `catdog openset
    fit` rewrites it at once (`catdog.onnx_runtime.write_onnx`).

    Raises:
        CatdogError: no model, no training folders, or photos that cannot be read.
    """
    from catdog import data
    from catdog.atomic import atomic_write_json
    from catdog.errors import CatdogError
    from catdog.model_files import resolve_model
    from catdog.models import load_keras
    from catdog.runs import read_json

    model_file, settings = resolve_model(model)
    own = settings.get("data")
    folders = list(folders or ([own] if isinstance(own, str) else own or []))
    if not folders:
        raise CatdogError(f"{model_file} records no training folders; pass them with --data DIR")
    fit_set, held_set, source = _training_side(folders, settings, own_folders=not folders or folders == _as_list(own))
    size = int(settings.get("image_size") or 0) or None
    net = load_keras(model_file, compile=False)  # registers catdog's own layers (RandomCropAugment) first
    size = size or int(net.input_shape[1])
    fit_dec, held_dec = (data.decode_images(s, size) for s in (fit_set, held_set))
    negs = {Path(f).name: data.decode_images(data.ImageSet(data.image_files(f), [0] * len(data.image_files(f))), size).images
            for f in negatives or []}
    check = fit_on_images(net, fit_dec.images, fit_dec.labels, held_dec.images, negs, flag_rate, source, log=log,
                          class_names=settings.get("class_names"))
    path = check.save(path_for(model_file))
    config_file = model_file.parent / "config.json"
    record = read_json(config_file, None)
    if isinstance(record, dict) and model_file.name == "model.keras":
        from catdog.model_files import unit_record

        updated = {**record, "openset": check.summary()}
        if record.get("unit"):  # the run is whole with its new check
            updated["unit"] = unit_record(model_file)
        atomic_write_json(config_file, updated)
    return check, path


def _as_list(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _training_side(folders: Sequence[str], settings: dict, own_folders: bool):
    """(photos to fit on, held-out photos, what the held-out photos are) from training folders."""
    from catdog import config, data

    layouts = data.discover_all(folders)
    train = data.ImageSet([p for lay in layouts for p in lay.train.paths], [y for lay in layouts for y in lay.train.labels])
    seed = int(settings.get("seed", config.SEED))
    cal = float(settings.get("calibration_split") or 0)
    if own_folders and cal:
        if settings.get("val_split"):
            train, _ = data.split(train, float(settings["val_split"]), seed)
        fit_set, held = data.split(train, cal, seed + 1)
        return fit_set, held, "held-out training photos (the run's calibration photos)"
    fit_set, held = data.split(train, 0.1, seed + 2)
    return fit_set, held, "a 10% share of the training folders (the model may have trained on some of them)"


HEAD_L2 = 0.01  # measured: 0.001-0.01 carried over alike (docs/openset.md)
HEAD_STEPS = 800


def fit_head(pet_features: Sequence[np.ndarray], negative_features: Sequence[np.ndarray], l2: float = HEAD_L2) -> tuple[np.ndarray, float]:
    """A pet-or-not logistic regression on every depth's features (weights for the raw, unscaled features).

    The features are standardised on the pets, the two classes weigh the same
    however many photos each has, and the weights are returned folded back to
    the raw features, so the graph needs one matmul. Plain gradient descent:
    deterministic, NumPy only.

    Returns:
        (weights (D,), bias) of the not-a-pet logit: positive means "not a cat or dog".
    """
    pets = np.concatenate([np.asarray(f, np.float64) for f in pet_features], axis=1)
    negs = np.concatenate([np.asarray(f, np.float64) for f in negative_features], axis=1)
    mu, sd = pets.mean(axis=0), pets.std(axis=0)
    sd = np.where(sd > 1e-3 * sd.max(), sd, np.inf)  # a (nearly) constant feature gets weight 0: float32 graphs stay exact
    x = (np.concatenate([pets, negs]) - mu) / sd
    y = np.r_[np.zeros(len(pets)), np.ones(len(negs))]
    weight = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(HEAD_STEPS):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w + b, -30, 30)))
        g = (p - y) * weight
        w -= 0.3 * (x.T @ g / len(y) + l2 * w)
        b -= 0.3 * g.mean()
    return w / sd, float(b - (w / sd) @ mu)


def load_for(model_file: str | os.PathLike) -> OpenSet | None:
    """The check saved beside a model, or None when it has none.

    Raises:
        OpenSetError: the file is there but unusable (the same on every backend,
            command and page; its message names the file and what to do).
    """
    path = path_for(model_file)
    if not path.exists():
        return None
    return OpenSet.load(path)
