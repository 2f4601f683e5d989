"""Measure training-recipe changes one at a time on catdog-small/validation.

Each variant trains the `compact` network with catdog's own decoding and
preprocessing, then prints validation accuracy, log loss, ECE (15 bins) and
the training time. Every variant differs from the baseline by one change.

    python benchmarks/recipe_ablation.py --variants base,ls,ema --epochs 12 --size 128

Never trains on the validation folder; it is only measured.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from catdog import data
from catdog.calibration import expected_calibration_error, log_loss
from catdog.hardware import cpu_model

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
VARIANTS = {
    "base": "compact as before this round (flip, rotate, zoom, contrast; cosine lr)",
    "ls": "+ label smoothing 0.1",
    "ema": "+ averaged (EMA) weights, momentum 0.99",
    "strong": "+ stronger augmentation (random-resized crop, translation, grayscale, colour)",
    "mixup": "+ mixup (alpha 0.2)",
    "wide": "+ wider network (stem 32; blocks 48, 96, 160, 224)",
    "extra": "+ petimages-extra (8,946 more training photos)",
    "progressive": "+ progressive resizing (most epochs at 3/4 size, the last quarter at full size)",
}


def _train_files(extra: bool) -> data.ImageSet:
    sets = [data.discover(SHARED / "catdog-small" / "train").train]
    if extra:
        sets.append(data.discover(SHARED / "petimages-extra").train)
    return data.ImageSet([p for s in sets for p in s.paths], [lab for s in sets for lab in s.labels])


def run_variant(name: str, epochs: int, size: int, seed: int) -> dict:
    import keras

    from catdog.models import build_model, fuse_batch_norm
    from catdog.training import cosine_learning_rate

    keras.utils.set_random_seed(seed)
    files = _train_files(extra=name == "extra")
    val_files, _ = data.load_labelled_folder(SHARED / "catdog-small" / "validation", ["cat", "dog"])
    sizes = [size] * epochs
    if name == "progressive":
        small = (size * 3 // 4) // 8 * 8
        sizes = [small] * (epochs - max(1, epochs // 4)) + [size] * max(1, epochs // 4)
    decoded = {s: data.decode_images(files, s, cache="memory") for s in sorted(set(sizes))}
    val = data.decode_images(val_files, size, cache="memory")
    options = {
        "augment": "strong" if name == "strong" else "standard",
        "widths": (32, 48, 96, 160, 224) if name == "wide" else None,
    }
    lr = 2e-3
    t0 = time.time()
    weights = None
    epoch = 0
    for s in sorted(set(sizes), key=sizes.index):
        n = sizes.count(s)
        model = build_model("compact", s, precision="float32", compile=False, **options)
        if weights is not None:
            model.set_weights(weights)
        model.compile(
            optimizer=keras.optimizers.Adam(lr, use_ema=name == "ema", ema_momentum=0.99),
            loss=keras.losses.BinaryCrossentropy(label_smoothing=0.1 if name == "ls" else 0.0),
            metrics=["accuracy"],
        )
        fuse_batch_norm(model)
        ds = data.make_tf_dataset(decoded[s], 32, shuffle=True, seed=seed)
        if name == "mixup":
            ds = ds.map(_mixup)
        sched = keras.callbacks.LearningRateScheduler(lambda e, _lr: cosine_learning_rate(e, epochs, lr))
        model.fit(ds, epochs=epoch + n, initial_epoch=epoch, callbacks=[sched], verbose=0)
        epoch += n
        weights = model.get_weights()
    seconds = time.time() - t0
    final = build_model("compact", size, precision="float32", compile=False, **options)
    final.set_weights(weights)
    probs = final.predict(val.images, batch_size=64, verbose=0).reshape(-1)
    flipped = final.predict(val.images[:, :, ::-1], batch_size=64, verbose=0).reshape(-1)
    labels = val.labels
    row = {
        "variant": name,
        "what": VARIANTS[name],
        "epochs": epochs,
        "size": size,
        "train_images": len(files),
        "train_seconds": round(seconds),
    }
    row.update(_scores(labels, probs))
    row.update({f"tta_{k}": v for k, v in _scores(labels, (probs + flipped) / 2).items()})
    return row


def _mixup(x, y):
    import tensorflow as tf

    alpha = 0.2
    g1 = tf.random.gamma([tf.shape(x)[0]], alpha)
    g2 = tf.random.gamma([tf.shape(x)[0]], alpha)
    lam = g1 / (g1 + g2)
    perm = tf.random.shuffle(tf.range(tf.shape(x)[0]))
    xf = tf.cast(x, tf.float32)
    lx = tf.reshape(lam, [-1, 1, 1, 1])
    x_mix = xf * lx + tf.gather(xf, perm) * (1 - lx)
    yf = tf.cast(y, tf.float32)
    y_mix = yf * lam + tf.gather(yf, perm) * (1 - lam)
    return x_mix, y_mix


def _scores(labels: np.ndarray, probs: np.ndarray) -> dict:
    return {
        "accuracy": round(float(np.mean((probs >= 0.5) == (labels == 1))), 4),
        "log_loss": round(log_loss(labels, probs), 4),
        "ece": round(expected_calibration_error(labels, probs), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated: " + ", ".join(VARIANTS))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--out", help="append each result as a JSON line to this file")
    args = parser.parse_args(argv)
    if not (SHARED / "catdog-small" / "validation").is_dir():
        print(f"skipped: {SHARED / 'catdog-small'} is missing", file=sys.stderr)
        return 0
    print(f"CPU: {cpu_model()}", flush=True)
    for name in args.variants.split(","):
        if name not in VARIANTS:
            parser.error(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
        row = run_variant(name, args.epochs, args.size, args.seed)
        row["cpu"] = cpu_model()
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
