"""Prediction latency and throughput: `model.predict` against catdog's Predictor on TensorFlow and on ONNX Runtime.

    python benchmarks/bench_predict.py [--model RUN_OR_FILE] [--images DIR] [--int8 FILE.onnx]

Single image: encoded bytes in, P(dog) out, over 100 images (median and p95).
Batch: 64 images already decoded, images per second.
model.predict: the shared preprocessing (`catdog.preprocess.load_array`), then
`model.predict`, as the notebook does. Predictor tensorflow / onnxruntime:
`Predictor.predict_one` / `Predictor.predict_arrays` on each backend (loaded
once; the same calibration). int8: an ONNX file quantised by
`catdog export --format onnx --quantize int8`, run through the same Predictor.
The paths are timed in alternating chunks of 10 images, so a busy CPU slows all alike.
The default model is the bundled one (assets/model); --quick uses an untrained seed network.

Each gain is printed against its fair peer: ONNX Runtime against the same
network as TensorFlow's compiled `tf.function` (the Predictor on each
backend), int8 against float32 ONNX. `model.predict`'s cost is mostly a
per-call set-up, so it is printed as an overhead in ms per call, not as a
speed-up of anything over it. For the bundled lite0 model,
benchmarks/bench_lite0.py times these paths and more in one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent
SHARED_IMAGES = REPO.parent / "shared" / "data" / "catdog-small" / "train"
FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


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


def model_file_for(model: str | None, size: int, workdir: Path) -> Path:
    """The .keras file to time: a given run/file, else the bundled model, else an untrained seed at `size`."""
    from catdog.predict import bundled_model_dir, resolve_model

    if model:
        return resolve_model(model)[0]
    if size == 0 and bundled_model_dir() is not None:
        return resolve_model(bundled_model_dir())[0]
    from catdog.models import build_model

    size = size or 256
    folder = workdir / f"seed-{size}"
    folder.mkdir(parents=True, exist_ok=True)
    build_model("seed", size, compile=False).save(folder / "model.keras")
    (folder / "config.json").write_text(f'{{"image_size": {size}, "model": "seed (untrained)"}}')
    return folder / "model.keras"


def load_paths(model_file: Path, precision: str, int8: str | None) -> tuple[object, dict]:
    """The Keras model as saved (for model.predict) and a Predictor per backend."""
    import keras

    from catdog.onnx_runtime import OnnxModel
    from catdog.predict import Predictor

    predictors = {
        "tensorflow": Predictor.load(model_file, precision=precision, backend="tensorflow"),
        "onnxruntime": Predictor.load(model_file, backend="onnxruntime"),
    }
    if int8:
        base = predictors["onnxruntime"]
        predictors["int8"] = Predictor(
            onnx_model=OnnxModel(int8), class_names=base.class_names, image_size=base.image_size,
            threshold=base.threshold, source=int8, temperature=base.temperature, uncertain_below=base.uncertain_below,
        )
    return keras.saving.load_model(model_file, compile=False), predictors


def time_single(paths: dict[str, Callable[[bytes], float]], images: list[bytes], chunk: int = 10) -> dict[str, list[float]]:
    """Per-image seconds, bytes -> probability, the paths rotating in chunks of `chunk` images.

    Chunks rather than single images: a `model.predict` call between two
    Predictor calls evicts the Predictor's caches and adds about 4 ms to it
    (10 ms alone, 14-15 ms strictly interleaved, seed network here), which
    is not what an app that only predicts sees. Chunks still spread load
    changes over all paths alike.
    """
    names = list(paths)
    times: dict[str, list[float]] = {name: [] for name in names}
    for c, start in enumerate(range(0, len(images), chunk)):
        for name in names[c % len(names):] + names[: c % len(names)]:
            for data in images[start : start + chunk]:
                t0 = time.perf_counter()
                paths[name](data)
                times[name].append(time.perf_counter() - t0)
    return times


def time_batch(paths: dict[str, Callable], batch, repeats: int) -> dict[str, float]:
    """Images per second for a decoded batch, best of `repeats` rotating runs."""
    best = {name: float("inf") for name in paths}
    for _ in range(repeats):
        for name, fn in paths.items():
            t0 = time.perf_counter()
            fn(batch)
            best[name] = min(best[name], time.perf_counter() - t0)
    return {k: len(batch) / s for k, s in best.items()}


def print_gains(latency: dict[str, list[float]], throughput: dict[str, float], batch: int, out=sys.stdout) -> None:
    """Each gain against its fair peer; model.predict's per-call overhead on its own line, never as a speed-up."""
    import numpy as np

    median = {name: 1000 * float(np.median(times)) for name, times in latency.items()}
    tf_path, ort = "Predictor tensorflow", "Predictor onnxruntime"

    def ratio(name: str, peer: str) -> str:
        return (f"single image {median[peer] / median[name]:.2f}x ({median[name]:.1f} against {median[peer]:.1f} ms), "
                f"batch of {batch} {throughput[name] / throughput[peer]:.2f}x "
                f"({throughput[name]:.0f} against {throughput[peer]:.0f} images/s)")

    print("each gain against its peer (medians; the same images, decoded by the same code):", file=out)
    print(f"  ONNX Runtime against TensorFlow's compiled tf.function (the Predictor on each backend): {ratio(ort, tf_path)}",
          file=out)
    if "Predictor int8" in latency:
        print(f"  int8 against float32 ONNX Runtime (same Predictor): {ratio('Predictor int8', ort)}", file=out)
    print(
        f"model.predict's per-call overhead (model.predict against the same network as a compiled tf.function, "
        f"single image): {median['model.predict'] - median[tf_path]:+.1f} ms per call "
        f"({median['model.predict']:.1f} against {median[tf_path]:.1f} ms); batch of {batch}: "
        f"{throughput['model.predict']:.0f} against {throughput[tf_path]:.0f} images/s",
        file=out,
    )


def main(argv=None) -> int:
    import io

    import numpy as np

    from catdog.hardware import PRECISIONS, cpu_family, cpu_flags, cpu_model, describe
    from catdog.hashing import file_sha256
    from catdog.preprocess import load_array

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="run folder, run id or .keras file (default: the bundled model)")
    p.add_argument("--images", default=str(SHARED_IMAGES), help="folder of photos to use (generated JPEGs when missing)")
    p.add_argument("--n", type=int, default=100, help="images for the single-image latency")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--image-size", type=int, default=0, help="time an untrained seed network at this size instead of the bundled model")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="what the TensorFlow Predictor computes in (auto: float32 on a CPU); model.predict keeps the model's own")
    p.add_argument(
        "--int8", default=None, metavar="FILE", help="also time an int8 ONNX file (from `catdog export --format onnx --quantize int8`)"
    )
    p.add_argument("--quick", action="store_true", help="a smoke run: untrained seed at 64x64, 6 images, batch 8")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.batch, args.image_size = 6, 8, 64

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        model_file = model_file_for(args.model, args.image_size, Path(tmp))
        model, predictors = load_paths(model_file, args.precision, args.int8)
        model_sha256 = file_sha256(model_file)
    size = predictors["tensorflow"].image_size
    images = sample_images(Path(args.images) if args.images else None, args.n, size)
    batch = np.stack([load_array(io.BytesIO(images[i % len(images)]), size) for i in range(args.batch)])

    single = {"model.predict": lambda data: float(model.predict(load_array(io.BytesIO(data), size)[None], verbose=0)[0, 0])}
    batched = {"model.predict": lambda b: model.predict(b, batch_size=len(b), verbose=0)}
    for name, predictor in predictors.items():
        label = f"Predictor {name}" if name != "int8" else "Predictor int8"
        single[label] = lambda data, pr=predictor: pr.predict_one(data).p_dog
        batched[label] = predictor.predict_arrays
    time_single(single, images[:3])  # warm-up: tracing, predict's function, caches
    latency = time_single(single, images)
    throughput = time_batch(batched, batch, repeats=3)

    m = describe()
    flags = cpu_flags()
    print(f"machine: {cpu_model()} (cpu family {cpu_family()}), {m['cores']} cores, GPUs: {m['gpus']}, "
          f"TensorFlow {m['tensorflow']}, Python {m['python']}")
    print(f"cpu flags: {' '.join(f for f in FLAGS_OF_INTEREST if f in flags) or 'none of ' + ' '.join(FLAGS_OF_INTEREST)}")
    print(
        f"onnxruntime {_version('onnxruntime')}; model: {model_file} ({size}x{size}, sha256 {model_sha256}); "
        f"load average (1 min) before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f}"
    )
    print(
        f"single image: {len(images)} images, bytes in -> P(dog) out, paths rotating every 10 images; "
        f"batch: {args.batch} decoded images, best of 3"
    )
    print("")
    header = f"{'path':<24}{'median ms':>11}{'p95 ms':>9}{f'batch {args.batch} img/s':>18}"
    print(header)
    print("-" * len(header))
    for name in single:
        ms = np.asarray(latency[name]) * 1000
        print(f"{name:<24}{np.median(ms):>11.1f}{np.percentile(ms, 95):>9.1f}{throughput[name]:>18.1f}")
    print("")
    print_gains(latency, throughput, args.batch)
    return 0


def _version(package: str) -> str:
    try:
        return __import__(package).__version__
    except ImportError:
        return "not installed"


if __name__ == "__main__":
    sys.exit(main())
