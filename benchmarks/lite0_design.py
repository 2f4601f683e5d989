"""The lite0 preset's design choices, measured on catdog-small/validation (which chose them: a validation set).

    python benchmarks/lite0_design.py --json docs/lite0_design.json

From the backbone's cached features (`catdog.features`; the first run computes them,
about 20,000 photos, several minutes on 2 cores), it measures:
1. the head's recipe: Keras heads (Adam, cosine, dropout 0.2, at least 20 batches an
   epoch, 30 epochs) at two learning rates and L2 weights, trained on catdog-small/train
   + petimages-extra, and on seeded draws of 40 and 300 training photos;
2. squash against centre crop: the same head on 2,000 training photos and the 1,999
   validation photos, each decoded both ways;
3. the "not a cat or dog" check: the ImageNet part, the feature distance and both
   together, with the threshold at 2%, 1.5% and 1% of held-out training pets, and the
   share of validation pets, clothing and objects each flags; with negatives (a
   pet-or-not head) fitted on one kind and measured on the other, both ways.
Figures are on the validation photos, which chose the recipe: the bundled model's
figures on them are in assets/model/README.md, and independent checks use other photos.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"


def machine() -> str:
    from catdog.hardware import cpu_family, lscpu_model_name

    return f"{lscpu_model_name()}, cpu family {cpu_family()}, {os.cpu_count()} cores"


def labelled(folder: Path) -> tuple[list[Path], list[int]]:
    paths, labels = [], []
    for label, name in enumerate(("cats", "dogs")):
        files = sorted((folder / name).iterdir())
        paths += files
        labels += [label] * len(files)
    return paths, labels


def features_of(paths, labels, extractor) -> tuple[np.ndarray, np.ndarray]:
    from catdog import features

    found = features.extract(paths, labels, extractor)
    return found.features.astype(np.float64), found.labels


def ece(y: np.ndarray, p: np.ndarray) -> float:
    from catdog.calibration import expected_calibration_error

    return float(expected_calibration_error(y, p))


def head(x: np.ndarray, y: np.ndarray, lr: float, l2: float, seed: int = 0, epochs: int = 30, batch: int = 64):
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    inp = keras.Input((x.shape[1],))
    out = keras.layers.Dense(1, activation="sigmoid", kernel_regularizer=keras.regularizers.l2(l2) if l2 else None)(
        keras.layers.Dropout(0.2)(inp))
    model = keras.Model(inp, out)
    model.compile(keras.optimizers.Adam(lr), "binary_crossentropy")
    steps = max(20, math.ceil(len(x) / batch))
    ds = tf.data.Dataset.from_tensor_slices((x.astype("float32"), y.astype("float32"))).shuffle(len(x), seed=seed).repeat().batch(batch)
    cosine = lambda e, _: lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1, e / (epochs - 1)))))  # noqa: E731
    model.fit(ds, epochs=epochs, steps_per_epoch=steps, verbose=0, callbacks=[keras.callbacks.LearningRateScheduler(cosine)])
    return lambda f: model.predict(f.astype("float32"), verbose=0, batch_size=1024).ravel()


def scores(y: np.ndarray, p: np.ndarray) -> dict:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return {"accuracy": round(float(((p > 0.5) == y).mean()), 4), "ece": round(ece(y, p), 4),
            "log_loss": round(float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))), 4)}


def balanced_draw(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.r_[rng.choice(np.where(y == 0)[0], n // 2, replace=False), rng.choice(np.where(y == 1)[0], n // 2, replace=False)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if not (DATA / "catdog-small").is_dir():
        raise SystemExit(f"{DATA} is missing: this benchmark needs ../shared/data")
    from PIL import ImageOps

    from catdog import features, openset, preprocess
    from catdog.models import build_model, lite0

    print(machine())
    model = build_model("lite0", compile=False)
    sha = lite0.converted_weights()[1]
    squash = features.FeatureExtractor(model, lite0.FEATURES, features.backbone_key(sha, 224, lite0.FEATURES))
    w_fc, b_fc = (np.asarray(v, np.float64) for v in model.get_layer(lite0.IMAGENET).get_weights())
    tr_x, tr_y = features_of(*labelled(DATA / "catdog-small" / "train"), squash)
    ex_x, ex_y = features_of(*labelled(DATA / "petimages-extra"), squash)
    va_paths, va_labels = labelled(DATA / "catdog-small" / "validation")
    va_x, va_y = features_of(va_paths, va_labels, squash)
    kinds = {k: features_of(sorted((DATA / "not-pets" / k).iterdir()), [0] * 1000000, squash)[0] for k in ("clothing", "objects")}
    out: dict = {"machine": machine(), "command": "python benchmarks/lite0_design.py", "head": [], "resize": [], "openset": [],
                 "carry_over": []}

    all_x, all_y = np.r_[tr_x, ex_x], np.r_[tr_y, ex_y]
    for lr, l2 in ((3e-3, 0.0), (1e-3, 0.0), (1e-3, 1e-4), (3e-3, 1e-3)):
        for n in (None, 40, 300):
            idx = np.arange(len(all_x)) if n is None else balanced_draw(tr_y, n, 1)
            x, y = (all_x, all_y) if n is None else (tr_x[idx], tr_y[idx])
            row = {"lr": lr, "l2": l2, "train_photos": len(x), **scores(va_y, head(x, y, lr, l2)(va_x))}
            out["head"].append(row)
            print("head", row, flush=True)

    # Squash (the one preprocessing) against a centre crop, on the same 2,000 training photos.
    idx = balanced_draw(tr_y, 2000, 0)
    tr_paths, _ = labelled(DATA / "catdog-small" / "train")
    original = preprocess.resize
    crop = features.FeatureExtractor(model, lite0.FEATURES, "crop-not-cached")
    try:
        preprocess.resize = lambda img, size: ImageOps.fit(img, (size, size), preprocess.RESIZE_METHOD)
        ct = features.extract([tr_paths[i] for i in idx], tr_y[idx].tolist(), crop, use_cache=False).features
        cv = features.extract(va_paths, va_labels, crop, use_cache=False).features
    finally:
        preprocess.resize = original
    for name, (xt, xv) in {"squash": (tr_x[idx], va_x), "centre crop": (ct, cv)}.items():
        p = head(xt, tr_y[idx], 1e-3, 1e-4)(xv)
        row = {"resize": name, "train_photos": len(idx), **scores(va_y, p), "errors": int(((p > 0.5) != va_y).sum())}
        out["resize"].append(row)
        print("resize", row, flush=True)

    # The open-set check's parts, threshold from held-out training pets (never from the non-pets).
    rng = np.random.default_rng(0)
    order = rng.permutation(len(all_x))
    fit_i, held_i = order[:4000], order[4000:4725]
    part_imagenet = lambda f: openset.not_pet_logprob(f @ w_fc + b_fc, lite0.PET_CLASSES)  # noqa: E731
    means, whiten = openset.class_statistics(all_x[fit_i], all_y[fit_i])

    def part_distance(f):
        fw, muw = f @ whiten, means @ whiten
        return ((fw[:, None, :] - muw[None]) ** 2).sum(-1).min(1)

    def standardised(part):
        held = part(all_x[held_i])
        return lambda f: (part(f) - held.mean()) / held.std()

    parts = {"imagenet": standardised(part_imagenet), "distance": standardised(part_distance)}
    parts["imagenet + distance"] = lambda f: np.maximum(parts["imagenet"](f), parts["distance"](f))
    for name, score in parts.items():
        for rate in (0.02, 0.015, 0.01):
            threshold = np.quantile(score(all_x[held_i]), 1 - rate)
            row = {"check": name, "held_out_flag_rate": rate, "validation_pets_flagged": round(float((score(va_x) > threshold).mean()), 4),
                   **{f"{k}_flagged": round(float((score(v) > threshold).mean()), 4) for k, v in kinds.items()}}
            out["openset"].append(row)
            print("openset", row, flush=True)
    for seen, unseen in (("clothing", "objects"), ("objects", "clothing")):
        w, b = openset.fit_head([all_x[fit_i]], [kinds[seen]])
        head_part = standardised(lambda f, w=w, b=b: f @ w + b)
        for name, score in {"head": head_part, "head + imagenet": lambda f, h=head_part: np.maximum(h(f), parts["imagenet"](f))}.items():
            threshold = np.quantile(score(all_x[held_i]), 0.98)
            row = {"negatives": seen, "check": name, "validation_pets_flagged": round(float((score(va_x) > threshold).mean()), 4),
                   f"{unseen}_flagged (never seen)": round(float((score(kinds[unseen]) > threshold).mean()), 4)}
            out["carry_over"].append(row)
            print("carry over", row, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
