"""Prediction latency and throughput: `model.predict` against catdog's Predictor.

    python benchmarks/bench_predict.py [--model RUN_OR_FILE] [--images DIR]

Single image: encoded bytes in, P(dog) out, over 100 images (median and p95).
Batch: 64 images already decoded, images per second.
notebook: the shared preprocessing (`catdog.preprocess.load_array`), then
`model.predict`, as the notebook does. catdog: `Predictor.predict_one` /
`Predictor.predict_arrays` (a compiled tf.function, loaded once).
The two are timed in alternating chunks of 10 images, so a busy CPU slows both alike.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent
SHARED_IMAGES = REPO.parent / "shared" / "data" / "catdog-small" / "train"


def sample_images(folder: Path | None, n: int, size: int) -> list[bytes]:
    """n encoded images: real photos from `folder` when there, else generated JPEGs."""
    import io

    import numpy as np
    from PIL import Image

    if folder is not None and folder.is_dir():
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if files:
            step = max(1, len(files) // n)
            return [p.read_bytes() for p in files[::step][:n]]
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, "JPEG")
        out.append(buf.getvalue())
    return out


def load_predictor(model: str | None, size: int, precision: str = "auto"):
    """The model to time: a given run/file, else the seed preset with untrained weights.

    Returns (the Keras model as saved, for model.predict; catdog's Predictor,
    which computes in `precision`).
    """
    import keras

    from catdog.hardware import resolve_inference_precision
    from catdog.models import build_model, with_policy
    from catdog.predict import Predictor

    if model:
        predictor = Predictor.load(model, precision=precision)
        return keras.saving.load_model(predictor.source, compile=False), predictor
    original = build_model("seed", size, compile=False)
    policy = resolve_inference_precision(precision)
    return original, Predictor(with_policy(original, policy), source=f"seed preset, untrained, {size}x{size}, catdog in {policy}")


def time_single(model, predictor, images: list[bytes], chunk: int = 10) -> dict[str, list[float]]:
    """Per-image seconds, bytes -> probability, the two paths alternating in chunks of `chunk` images.

    Chunks rather than single images: a `model.predict` call between two
    Predictor calls evicts the Predictor's caches and adds about 4 ms to it
    (10 ms alone, 14-15 ms strictly interleaved, seed network here), which
    is not what an app that only predicts sees. Chunks still spread load
    changes over both paths alike.
    """
    import io

    from catdog.preprocess import load_array

    size = predictor.image_size
    times: dict[str, list[float]] = {"notebook": [], "catdog": []}
    for c, start in enumerate(range(0, len(images), chunk)):
        for name in (("notebook", "catdog") if c % 2 == 0 else ("catdog", "notebook")):
            for data in images[start : start + chunk]:
                t0 = time.perf_counter()
                if name == "notebook":
                    float(model.predict(load_array(io.BytesIO(data), size)[None], verbose=0)[0, 0])
                else:
                    _ = predictor.predict_one(data).p_dog
                times[name].append(time.perf_counter() - t0)
    return times


def time_batch(model, predictor, batch, repeats: int) -> dict[str, float]:
    """Images per second for a decoded batch, best of `repeats` alternating runs."""
    best = {"notebook": float("inf"), "catdog": float("inf")}
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict(batch, batch_size=len(batch), verbose=0)
        best["notebook"] = min(best["notebook"], time.perf_counter() - t0)
        t0 = time.perf_counter()
        predictor.predict_arrays(batch)
        best["catdog"] = min(best["catdog"], time.perf_counter() - t0)
    return {k: len(batch) / s for k, s in best.items()}


def main(argv=None) -> int:
    import numpy as np

    from catdog.hardware import PRECISIONS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="run folder, run id or .keras file (default: the seed preset, untrained)")
    p.add_argument("--images", default=str(SHARED_IMAGES), help="folder of photos to use (generated JPEGs when missing)")
    p.add_argument("--n", type=int, default=100, help="images for the single-image latency")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--image-size", type=int, default=256, help="input size of the untrained seed model")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="what catdog's Predictor computes in (auto: float32 on a CPU); model.predict keeps the model's own")
    p.add_argument("--quick", action="store_true", help="a smoke run: 64x64, 6 images, batch 8")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.batch, args.image_size = 6, 8, 64
    from catdog.hardware import describe
    from catdog.preprocess import load_array

    load_before = os.getloadavg()[0]
    model, predictor = load_predictor(args.model, args.image_size, args.precision)
    images = sample_images(Path(args.images) if args.images else None, args.n, predictor.image_size)
    batch = np.stack([load_array(__import__("io").BytesIO(images[i % len(images)]), predictor.image_size) for i in range(args.batch)])
    time_single(model, predictor, images[:3])  # warm-up: tracing, predict's function, caches
    single = time_single(model, predictor, images)
    throughput = time_batch(model, predictor, batch, repeats=3)
    m = describe()
    print(f"machine: {m['cpu']}, {m['cores']} cores, GPUs: {m['gpus']}, TensorFlow {m['tensorflow']}, Python {m['python']}")
    print(f"model: {predictor.source}; load average (1 min) before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f}")
    print(
        f"single image: {len(images)} images, bytes in -> P(dog) out, paths alternating every 10 images; batch: "
        f"{args.batch} decoded images, best of 3"
    )
    print("")
    header = f"{'path':<16}{'median ms':>11}{'p95 ms':>9}{f'batch {args.batch} img/s':>18}"
    print(header)
    print("-" * len(header))
    label = {"notebook": "model.predict", "catdog": "catdog Predictor"}
    for name in ("notebook", "catdog"):
        ms = np.asarray(single[name]) * 1000
        print(f"{label[name]:<16}{np.median(ms):>11.1f}{np.percentile(ms, 95):>9.1f}{throughput[name]:>18.1f}")
    print("")
    speedup = float(np.median(single["notebook"]) / np.median(single["catdog"]))
    print(f"batch throughput speedup: {throughput['catdog'] / throughput['notebook']:.2f}")
    print(f"speedup {speedup:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
