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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

OPENSET_FILENAME = "openset.npz"
FORMAT_VERSION = 1
DEFAULT_FLAG_RATE = 0.02  # share of held-out training pets the check may flag
SHRINKAGE = 0.1  # covariance shrinkage toward a scaled identity: stable with few photos per dimension
MIN_FIT_PHOTOS = 20
METHOD = "multi-layer Mahalanobis distance to the training photos' class means"


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

    def layer_distances(self, features: Sequence[np.ndarray]) -> np.ndarray:
        """Squared Mahalanobis distance to the nearest class mean, per layer: shape (n, layers)."""
        out = []
        for f, mu, w in zip(features, self.means, self.whiten):
            fw = np.asarray(f, np.float64) @ w
            muw = mu @ w
            d = ((fw[:, None, :] - muw[None, :, :]) ** 2).sum(-1)
            out.append(d.min(axis=1))
        return np.stack(out, axis=1)

    def score(self, features: Sequence[np.ndarray]) -> np.ndarray:
        """The open-set score per photo (higher = less like the training photos)."""
        z = (self.layer_distances(features) - self.centre) / self.scale
        return z.mean(axis=1)

    def is_not_pet(self, scores) -> np.ndarray:
        return np.asarray(scores) > self.threshold

    def summary(self) -> dict:
        """What config.json and sidecars record (the arrays stay in openset.npz)."""
        return {"method": METHOD, "layers": list(self.layers), "threshold": round(float(self.threshold), 6), **self.info}

    def to_bytes(self) -> bytes:
        arrays = {"centre": self.centre, "scale": self.scale, "threshold": np.float64(self.threshold)}
        for i, (mu, w) in enumerate(zip(self.means, self.whiten)):
            arrays[f"mean_{i}"], arrays[f"whiten_{i}"] = mu, w
        meta = {"version": FORMAT_VERSION, "layers": self.layers, "info": self.info}
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
        """Read a saved check.

        Raises:
            ValueError: the file is not a catdog open-set file of a known version.
        """
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                if meta.get("version") != FORMAT_VERSION:
                    raise ValueError(f"open-set file version {meta.get('version')!r} is not {FORMAT_VERSION}")
                n = len(meta["layers"])
                return cls(
                    layers=list(meta["layers"]),
                    means=[z[f"mean_{i}"] for i in range(n)],
                    whiten=[z[f"whiten_{i}"] for i in range(n)],
                    centre=z["centre"],
                    scale=z["scale"],
                    threshold=float(z["threshold"]),
                    info=dict(meta.get("info") or {}),
                )
        except (OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read the open-set check {str(path)!r}: {exc}") from exc


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
) -> OpenSet:
    """Fit the check on training photos; standardise and pick the threshold on held-out training photos.

    Args:
        fit_features: per layer, (n, d) features of the photos the model trained on.
        fit_labels: their class labels.
        held_out_features: per layer, features of held-out training photos (never the
            photos that are reported on); they set the standardisation and the threshold.
        layers: the feature layers' names.
        flag_rate: the share of held-out training pets the threshold may flag.

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
    stats = [class_statistics(f, fit_labels) for f in fit_features]
    check = OpenSet(list(layers), [m for m, _ in stats], [w for _, w in stats], np.zeros(len(layers)), np.ones(len(layers)), 0.0)
    held = check.layer_distances(held_out_features)
    check.centre, check.scale = held.mean(axis=0), held.std(axis=0) + 1e-9
    scores = check.score(held_out_features)
    check.threshold = float(np.quantile(scores, 1.0 - flag_rate))
    check.info = {
        "fitted_on": int(n_fit),
        "threshold_from": int(n_held),
        "flag_rate_target": flag_rate,
        "held_out_flagged": round(float(np.mean(scores > check.threshold)), 5),
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
    """The open-set score in TensorFlow ops, from the features of `feature_tensors` (same math as `OpenSet.score`)."""
    import tensorflow as tf

    zs = []
    for i, f in enumerate(features):
        w = tf.constant(check.whiten[i], tf.float32)
        muw = tf.constant(check.means[i] @ check.whiten[i], tf.float32)
        fw = tf.matmul(tf.cast(f, tf.float32), w)
        d = tf.reduce_sum(tf.square(fw[:, None, :] - muw[None, :, :]), axis=-1)
        zs.append((tf.reduce_min(d, axis=1) - float(check.centre[i])) / float(check.scale[i]))
    return tf.reduce_mean(tf.stack(zs, axis=1), axis=1)


def inference_fn(model, check: OpenSet | None) -> Callable:
    """`f(float32 images) -> (P(class 1) (n,), open-set score (n,))` on TensorFlow; the score is 0 without a check."""
    import tensorflow as tf

    if check is None:

        def plain(x):
            p = tf.reshape(tf.cast(model(x, training=False), tf.float32), (-1,))
            return p, tf.zeros_like(p)

        return plain
    fm = feature_model(model, check.layers)

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
    flag_rate: float = DEFAULT_FLAG_RATE,
    held_out_source: str = "held-out training photos",
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> OpenSet:
    """Fit the check of a Keras model on decoded uint8 photos (training side only).

    Args:
        model: the trained Keras model.
        fit_images, fit_labels: photos the model trained on (a seeded sample of at most `MAX_FIT_PHOTOS` is used).
        held_images: held-out photos of the same classes: they set the threshold.
        negatives: named sets of photos with no cat or dog; only the share flagged is recorded.
        flag_rate: the share of `held_images` the threshold may flag.
        held_out_source: what `held_images` are, for the record.
    """
    rng = np.random.default_rng(seed)
    pick = lambda n, cap: np.sort(rng.choice(n, cap, replace=False)) if n > cap else np.arange(n)  # noqa: E731
    fit_idx, held_idx = pick(len(fit_images), MAX_FIT_PHOTOS), pick(len(held_images), MAX_HELD_OUT)
    layers = feature_layer_names(model)
    _, fit_feats = extract(model, _rows(fit_images, fit_idx), layers)
    _, held_feats = extract(model, _rows(held_images, held_idx), layers)
    check = fit(fit_feats, np.asarray(fit_labels)[fit_idx], held_feats, layers, flag_rate)
    check.info["threshold_from_source"] = held_out_source
    for name, images in (negatives or {}).items():
        _, feats = extract(model, images, layers)
        check.info.setdefault("negatives_flagged", {})[name] = round(float(check.is_not_pet(check.score(feats)).mean()), 4)
    flagged = check.info.get("negatives_flagged", {})
    log(
        f"Open-set check ('not a cat or dog'): {len(layers)} depths, fitted on {len(fit_idx)} training photos; threshold "
        f"{check.threshold:.3f} flags {check.info['held_out_flagged']:.1%} of {len(held_idx)} {held_out_source}"
        + "".join(f"; flags {share:.1%} of {name}" for name, share in flagged.items())
    )
    return check


def _rows(images, idx: np.ndarray) -> np.ndarray:
    return np.stack([np.asarray(images[i]) for i in idx]) if len(idx) else np.zeros((0, *np.shape(images)[1:]), np.uint8)


def fit_for_model(
    model: str | os.PathLike | None,
    folders: Sequence[str] | None = None,
    negatives: Sequence[str] | None = None,
    flag_rate: float = DEFAULT_FLAG_RATE,
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
    check = fit_on_images(net, fit_dec.images, fit_dec.labels, held_dec.images, negs, flag_rate, source, log=log)
    path = check.save(path_for(model_file))
    config_file = model_file.parent / "config.json"
    record = read_json(config_file, None)
    if isinstance(record, dict) and model_file.name == "model.keras":
        atomic_write_json(config_file, {**record, "openset": check.summary()})
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


def path_for(model_file: str | os.PathLike) -> Path:
    """Where a model keeps its open-set check: `openset.npz` beside `model.keras`, else `<file>.openset.npz`."""
    model_file = Path(model_file)
    return model_file.with_name(OPENSET_FILENAME if model_file.name == "model.keras" else model_file.name + "." + OPENSET_FILENAME)


def load_for(model_file: str | os.PathLike, log: Callable[[str], None] | None = None) -> OpenSet | None:
    """The check saved beside a model, or None when it has none.

    A check that cannot be read is reported through `log` (the model still
    answers cat or dog, without "not a cat or dog") rather than failing the model.
    """
    path = path_for(model_file)
    if not path.exists():
        return None
    try:
        return OpenSet.load(path)
    except ValueError as exc:
        (log or _warn)(f"{exc}; refit it with `catdog openset fit {Path(model_file).parent}`")
        return None


def _warn(message: str) -> None:
    import logging

    logging.getLogger(__name__).warning(message)
