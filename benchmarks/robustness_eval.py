"""Accuracy and calibration of a model on transformed copies of a labelled folder.

Each photo is transformed in memory (centre crop 70%, close crop 50%, portrait
3:4 and landscape 16:9 centre crops, grayscale, JPEG quality 30, half
resolution, rotation by +15 or -15 degrees), then classified through the
shared preprocessing path, exactly as a dropped file would be. The aspect
crops stand for photos framed closer and not square, as breed photos are.

    python benchmarks/robustness_eval.py --data ../shared/data/catdog-small/validation [--model RUN]

Prints one line per transform and a JSON summary.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from PIL import Image, ImageOps

from catdog import data
from catdog.calibration import expected_calibration_error, log_loss
from catdog.hardware import cpu_model
from catdog.predict import Predictor
from catdog.preprocess import load_array, open_image, to_rgb


def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


def _centre_crop(img: Image.Image, share: float = 0.7) -> Image.Image:
    w, h = img.size
    cw, ch = int(w * share), int(h * share)
    left, top = (w - cw) // 2, (h - ch) // 2
    return img.crop((left, top, left + cw, top + ch))


def _aspect_crop(img: Image.Image, width: int, height: int) -> Image.Image:
    """The largest centred crop with aspect width:height."""
    w, h = img.size
    cw, ch = (w, round(w * height / width)) if w * height <= h * width else (round(h * width / height), h)
    left, top = (w - cw) // 2, (h - ch) // 2
    return img.crop((left, top, left + max(1, cw), top + max(1, ch)))


TRANSFORMS: dict[str, Callable[[Image.Image, int], Image.Image]] = {
    "original": lambda img, i: img,
    "centre crop 70%": lambda img, i: _centre_crop(img),
    "close crop 50%": lambda img, i: _centre_crop(img, 0.5),
    "portrait 3:4 crop": lambda img, i: _aspect_crop(img, 3, 4),
    "landscape 16:9 crop": lambda img, i: _aspect_crop(img, 16, 9),
    "grayscale": lambda img, i: ImageOps.grayscale(img).convert("RGB"),
    "JPEG quality 30": lambda img, i: _jpeg(img, 30),
    "half resolution": lambda img, i: img.resize((max(1, img.width // 2), max(1, img.height // 2)), Image.Resampling.BILINEAR),
    "rotation ±15°": lambda img, i: img.rotate(15 if i % 2 else -15, resample=Image.Resampling.BILINEAR, expand=False),
}


def labelled_files(folder, class_names, limit: int | None = None) -> tuple[list, np.ndarray]:
    """(paths, 0/1 labels) of a labelled folder; with `limit`, only the first `limit` photos of each class."""
    images, _ = data.load_labelled_folder(folder, class_names)
    files, labels = list(images.paths), np.asarray(images.labels)
    if limit:
        keep = np.concatenate([np.flatnonzero(labels == c)[:limit] for c in np.unique(labels)])
        files, labels = [files[i] for i in keep], labels[keep]
    return files, labels


def transformed_arrays(files: list, image_size: int, transform) -> np.ndarray:
    """The model inputs (n, size, size, 3) of `files` after `transform`, through the shared preprocessing."""
    return np.stack([load_array(transform(to_rgb(open_image(path)), i), image_size) for i, path in enumerate(files)])


def scores(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict:
    """Accuracy, ECE and log loss of P(class 1) against 0/1 labels."""
    return {
        "accuracy": round(float(np.mean((probs >= threshold) == (labels == 1))), 4),
        "ece": round(expected_calibration_error(labels, probs), 4),
        "log_loss": round(log_loss(labels, probs), 4),
    }


def predict_batches(predictor: Predictor, arrays: np.ndarray) -> np.ndarray:
    return np.concatenate([predictor.predict_arrays(arrays[s : s + 64]) for s in range(0, len(arrays), 64)])


def evaluate_transform(predictor: Predictor, files: list, labels: np.ndarray, transform) -> dict:
    arrays = transformed_arrays(files, predictor.image_size, transform)
    return scores(labels, predict_batches(predictor, arrays), predictor.threshold)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="labelled folder (cats/ + dogs/)")
    parser.add_argument("--model", default=None, help="run folder or .keras file (default: the active or bundled model)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N photos of each class")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.data):
        print(f"skipped: {args.data} is not a folder", file=sys.stderr)
        return 0
    predictor = Predictor.load(args.model)
    files, labels = labelled_files(args.data, predictor.class_names, args.limit)
    print(f"CPU: {cpu_model()} · model {predictor.source} · {len(files)} photos from {args.data}")
    summary = {}
    for name, transform in TRANSFORMS.items():
        t0 = time.time()
        summary[name] = evaluate_transform(predictor, files, labels, transform)
        row = summary[name]
        print(
            f"{name:20s} accuracy {row['accuracy']:.4f}  ECE {row['ece']:.4f}  log loss {row['log_loss']:.4f}  ({time.time() - t0:.0f} s)",
            flush=True,
        )
    print(json.dumps({"model": predictor.source, "data": args.data, "n": len(files), "cpu": cpu_model(), "transforms": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
