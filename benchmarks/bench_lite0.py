"""lite0 speed side by side, in one run: feature extraction, `catdog predict`, Keras `model.predict`,
a minimal ONNX Runtime script, and int8.

    python benchmarks/bench_lite0.py --model /tmp/bundle/runs/bundled-lite0 --out docs/bench_lite0.json

On the same photos (`--n` of `--photos`, spread evenly over the sorted list so both classes appear):
- features cold / warm: `catdog.features.extract` (read, sha256, decode, backbone, cache write)
  with an empty feature cache, and again with every photo cached;
- Predictor onnxruntime / tensorflow: `Predictor.predict(paths)`, end to end from the files;
- Keras model.predict: the photos decoded once (uint8), `model.predict(batch_size=32)`;
- tf.function: the Predictor's compiled TensorFlow function on the same uint8 arrays, batches of 32;
- ORT minimal: `onnxruntime.InferenceSession` + `session.run` on batches of 32 of the same arrays:
  model.onnx (uint8 in, what the Predictor runs), the float32 export (`catdog export --format
  onnx`, float32 in) and its int8 quantisation (`catdog.quantize`, calibrated on
  `--calibration-images` photos of `--calibration`), the last two fed float32 arrays;
- batch 1: the ms per single image of the array paths above (median and p95);
- `catdog predict --json FILES`: the command's wall time for the same files, per backend;
- int8 accuracy against float32 on every photo of `--check-data`.
Throughput paths are timed in alternating chunks of `--chunk` photos, the order rotating each
chunk, so a busy CPU slows all alike; the 1-minute load average is recorded at the start of
every round. Each gain is reported against its own peer, never as one lumped speed-up.
`--quick` is a smoke run (32 photos, one round, 16 calibration photos).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data" / "catdog-small"
BATCH = 32
QUIET_LOAD = 1.5  # above this 1-min load average at the start, wait a minute and look again, once
ACCURACY_BUDGET_POINTS = 0.5


def machine() -> dict:
    """lscpu's model name, /proc/cpuinfo's cpu family, cores, the flags that matter for int8, versions."""
    from catdog.hardware import cpu_family, cpu_flags, lscpu_model_name

    name, family = lscpu_model_name(), cpu_family()
    flags = cpu_flags()
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")
    return {
        "lscpu_model_name": name, "cpu_family": family, "cores": os.cpu_count(),
        "flags": [f for f in wanted if f in flags], "python": platform.python_version(),
        "tensorflow": _version("tensorflow"), "keras": _version("keras"), "onnxruntime": _version("onnxruntime"),
    }


def machine_line(m: dict) -> str:
    return (f"CPU: lscpu model name {m['lscpu_model_name']!r}, /proc/cpuinfo cpu family {m['cpu_family']}, "
            f"{m['cores']} cores, flags {' '.join(m['flags']) or 'none'}")


def pick_photos(folder: Path, n: int) -> tuple[list[Path], list[int]]:
    """n photos spread over the sorted list of a class-folder layout, with their labels."""
    from catdog.data import load_labelled_folder

    images, _ = load_labelled_folder(folder)
    if len(images.paths) < n:
        raise ValueError(f"--n asks for {n} photos, {str(folder)!r} has {len(images.paths)}")
    step = len(images.paths) // n
    chosen = list(range(0, step * n, step))
    return [Path(images.paths[i]) for i in chosen], [int(images.labels[i]) for i in chosen]


def wait_for_quiet(log: Callable[[str], None]) -> list[float]:
    """The 1-minute load average at the start; above QUIET_LOAD, wait a minute and read it again (once)."""
    seen = [os.getloadavg()[0]]
    if seen[0] > QUIET_LOAD:
        log(f"load average {seen[0]:.2f} > {QUIET_LOAD}: waiting 60 s, then starting whatever it is")
        time.sleep(60)
        seen.append(os.getloadavg()[0])
    return seen


def in_batches(fn: Callable, batch: int = BATCH) -> Callable:
    def run(arrays):
        return [fn(arrays[i : i + batch]) for i in range(0, len(arrays), batch)]

    return run


def time_chunks(paths: dict[str, Callable[[slice], object]], n: int, chunk: int, rounds: int,
                loads: list[float]) -> dict[str, list[float]]:
    """Seconds per chunk of each path; in each chunk every path runs once, the order rotating."""
    names = list(paths)
    times: dict[str, list[float]] = {name: [] for name in names}
    turn = 0
    for _ in range(rounds):
        loads.append(os.getloadavg()[0])
        for start in range(0, n, chunk):
            part = slice(start, min(n, start + chunk))
            for name in names[turn % len(names):] + names[: turn % len(names)]:
                t0 = time.perf_counter()
                paths[name](part)
                times[name].append(time.perf_counter() - t0)
            turn += 1
    return times


def time_single(paths: dict[str, Callable[[int], object]], n: int, chunk: int = 8) -> dict[str, list[float]]:
    """Seconds per single image, the paths rotating every `chunk` images."""
    names = list(paths)
    times: dict[str, list[float]] = {name: [] for name in names}
    for c, start in enumerate(range(0, n, chunk)):
        for name in names[c % len(names):] + names[: c % len(names)]:
            for i in range(start, min(n, start + chunk)):
                t0 = time.perf_counter()
                paths[name](i)
                times[name].append(time.perf_counter() - t0)
    return times


def time_cli(model_dir: Path, files: list[Path], repeats: int) -> dict[str, dict]:
    """`catdog predict --json FILES` wall time per backend, the backends taking turns (auto, tf, tf, auto...)."""
    backends = ["onnxruntime", "tensorflow"]
    walls: dict[str, list[float]] = {b: [] for b in backends}
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    for r in range(repeats):
        for backend in backends if r % 2 == 0 else backends[::-1]:
            command = [sys.executable, "-m", "catdog", "predict", "--model", str(model_dir), "--json",
                       "--backend", backend, *map(str, files)]
            t0 = time.perf_counter()
            done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
            walls[backend].append(time.perf_counter() - t0)
            lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode != 0 or len(lines) != len(files) or any("error" in x for x in lines):
                raise RuntimeError(f"catdog predict --backend {backend} failed (rc {done.returncode}): {done.stderr[-2000:]}")
    return {b: {"wall_s": [round(w, 3) for w in ws], "best_wall_s": round(min(ws), 3),
                "images_per_s": round(len(files) / min(ws), 1)} for b, ws in walls.items()}


def make_int8(model_file: Path, size: int, work: Path, calibration: Path, n_calibration: int) -> tuple[Path, Path, float]:
    """The float32 ONNX export and its int8 quantisation (catdog.quantize), with the quantisation's seconds."""
    from catdog.export import export_model
    from catdog.quantize import calibration_files, quantize_onnx

    float_onnx = export_model(model_file, "onnx", work / "float32.onnx")
    files = calibration_files(calibration, n_calibration)
    t0 = time.perf_counter()
    int8_onnx = quantize_onnx(float_onnx, work / "int8.onnx", files, size)
    return float_onnx, int8_onnx, time.perf_counter() - t0


def summarise(times: list[float], images: int) -> dict:
    import numpy as np

    per_image_ms = 1000 * np.asarray(times) / (images / len(times))
    return {"images_per_s": round(images / float(np.sum(times)), 1),
            "chunk_ms_per_image_median": round(float(np.median(per_image_ms)), 2),
            "chunk_ms_per_image_min": round(float(np.min(per_image_ms)), 2)}


def main(argv=None) -> int:
    import numpy as np
    import onnxruntime as ort

    from catdog import features, quantize
    from catdog.hashing import file_sha256
    from catdog.models import load_keras
    from catdog.predict import Predictor, resolve_model
    from catdog.preprocess import load_array

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="a lite0 run folder (default: the bundled model)")
    p.add_argument("--photos", default=str(SHARED / "validation"), help="class folders to time on")
    p.add_argument("--n", type=int, default=256, help="photos to time on")
    p.add_argument("--chunk", type=int, default=64, help="photos per turn of each path")
    p.add_argument("--rounds", type=int, default=3, help="passes over the photos per path")
    p.add_argument("--single", type=int, default=64, help="images for the batch-1 latency")
    p.add_argument("--cli-repeats", type=int, default=2, help="`catdog predict` runs per backend")
    p.add_argument("--calibration", default=str(SHARED / "train"), help="photos to calibrate int8 on (never validation)")
    p.add_argument("--calibration-images", type=int, default=quantize.CALIBRATION_IMAGES)
    p.add_argument("--check-data", default=str(SHARED / "validation"), help="labelled folder for int8's accuracy")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    p.add_argument("--quick", action="store_true", help="a smoke run: 32 photos, one round, 16 calibration photos")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.chunk, args.rounds, args.single, args.cli_repeats, args.calibration_images = 32, 16, 1, 8, 1, 16
    for name in ("n", "chunk", "rounds", "single", "cli_repeats", "calibration_images"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)!r}")

    wall0 = time.time()
    m = machine()
    print(machine_line(m))
    start_loads = wait_for_quiet(print)
    model_file, settings = resolve_model(args.model)
    if settings.get("preset", settings.get("model")) != "lite0":
        raise ValueError(f"--model must be a lite0 run, got {str(model_file)!r} (preset {settings.get('preset')!r})")
    model_sha = file_sha256(model_file)
    size = int(settings["image_size"])
    files, labels = pick_photos(Path(args.photos), args.n)
    arrays = np.stack([load_array(f, size) for f in files])
    arrays_f32 = arrays.astype(np.float32)
    print(f"model: {model_file} (sha256 {model_sha}); {len(files)} photos of {args.photos}; load average {start_loads}")

    work = Path(tempfile.mkdtemp(prefix="bench-lite0-"))
    os.environ["CATDOG_CACHE_DIR"] = str(work / "cache")  # an empty feature cache of our own
    print("exporting float32 ONNX and quantising to int8 ...", flush=True)
    float_onnx, int8_onnx, quantise_s = make_int8(model_file, size, work, Path(args.calibration), args.calibration_images)

    keras_model = load_keras(model_file, compile=False)
    predictors = {b: Predictor.load(model_file, precision="float32", backend=b) for b in ("onnxruntime", "tensorflow")}
    onnx_file = predictors["onnxruntime"].onnx_file
    sessions = {  # the minimal ONNX Runtime script: a session, session.run, nothing of catdog's
        "model.onnx": ort.InferenceSession(onnx_file, providers=["CPUExecutionProvider"]),
        "float32": ort.InferenceSession(str(float_onnx), providers=["CPUExecutionProvider"]),
        "int8": ort.InferenceSession(str(int8_onnx), providers=["CPUExecutionProvider"]),
    }
    feeds = {"model.onnx": arrays, "float32": arrays_f32, "int8": arrays_f32}

    def ort_run(name: str) -> Callable:
        session, x = sessions[name], feeds[name]
        input_name = session.get_inputs()[0].name
        return lambda part: in_batches(lambda b: session.run(None, {input_name: b}))(x[part])

    extractor = features.FeatureExtractor(keras_model, "features", "")
    tf_fn = predictors["tensorflow"]._compiled()
    fresh = iter(range(10**6))

    def extract_cold(part: slice) -> None:
        extractor.key = features.backbone_key(model_sha, size, f"bench-cold-{next(fresh)}")
        found = features.extract(files[part], labels[part], extractor)
        assert found.from_cache == 0 and not found.skipped

    def extract_warm(part: slice) -> None:
        extractor.key = features.backbone_key(model_sha, size, "bench-warm")
        found = features.extract(files[part], labels[part], extractor)
        assert found.from_cache == len(found.paths) and not found.skipped

    throughput = {
        "features cold (extract, empty cache)": extract_cold,
        "features warm (extract, all cached)": extract_warm,
        "Predictor onnxruntime, predict(paths)": lambda part: predictors["onnxruntime"].predict(files[part]),
        "Predictor tensorflow, predict(paths)": lambda part: predictors["tensorflow"].predict(files[part]),
        "Keras model.predict (uint8 arrays)": lambda part: keras_model.predict(arrays[part], batch_size=BATCH, verbose=0),
        "tf.function (Predictor's, uint8 arrays)": lambda part: in_batches(tf_fn)(arrays[part]),
        "ORT minimal, model.onnx (uint8 arrays)": ort_run("model.onnx"),
        "ORT minimal, float32 export (float32 arrays)": ort_run("float32"),
        "ORT minimal, int8 (float32 arrays)": ort_run("int8"),
    }
    print("warming up every path ...", flush=True)
    extractor.key = features.backbone_key(model_sha, size, "bench-warm")
    features.extract(files, labels, extractor)  # fills the warm cache, traces the backbone
    for fn in throughput.values():
        fn(slice(0, min(args.chunk, args.n)))
    round_loads: list[float] = []
    t_run = time.perf_counter()
    chunks = time_chunks(throughput, args.n, args.chunk, args.rounds, round_loads)
    throughput_s = time.perf_counter() - t_run
    results = {name: summarise(t, args.n * args.rounds) for name, t in chunks.items()}

    def ort_one(name: str) -> Callable:
        session, x = sessions[name], feeds[name]
        input_name = session.get_inputs()[0].name
        return lambda i: session.run(None, {input_name: x[i : i + 1]})

    single_paths = {
        "tf.function (Predictor's), uint8": lambda i: tf_fn(arrays[i : i + 1]),
        "ORT minimal, model.onnx, uint8": ort_one("model.onnx"),
        "ORT minimal, float32 export": ort_one("float32"),
        "ORT minimal, int8": ort_one("int8"),
    }
    time_single(single_paths, min(8, args.n))  # warm-up
    single_n = min(args.single, args.n)
    singles = time_single(single_paths, single_n)
    latency = {name: {"median_ms": round(1000 * float(np.median(t)), 2), "p95_ms": round(1000 * float(np.percentile(t, 95)), 2)}
               for name, t in singles.items()}

    print("timing `catdog predict` ...", flush=True)
    cli = time_cli(model_file.parent, files, args.cli_repeats)

    print(f"int8 against float32 on every photo of {args.check_data} ...", flush=True)
    report = quantize.compare(float_onnx, int8_onnx, args.check_data, settings["class_names"], settings.get("threshold", 0.5))
    end_load = os.getloadavg()[0]

    def gain(a: str, b: str, table: dict, key: str = "images_per_s") -> float:
        return round(table[a][key] / table[b][key], 2)

    gains = {
        "ONNX Runtime vs TensorFlow, same uint8 arrays, batch 32 (ORT model.onnx / Keras model.predict)":
            gain("ORT minimal, model.onnx (uint8 arrays)", "Keras model.predict (uint8 arrays)", results),
        "ONNX Runtime vs TensorFlow, same uint8 arrays, batch 32 (ORT model.onnx / tf.function)":
            gain("ORT minimal, model.onnx (uint8 arrays)", "tf.function (Predictor's, uint8 arrays)", results),
        "ONNX Runtime vs TensorFlow, Predictor.predict(paths)":
            gain("Predictor onnxruntime, predict(paths)", "Predictor tensorflow, predict(paths)", results),
        "ONNX Runtime vs TensorFlow, catdog predict wall": round(cli["tensorflow"]["best_wall_s"] / cli["onnxruntime"]["best_wall_s"], 2),
        "int8 vs float32 ONNX, same float32 arrays, batch 32":
            gain("ORT minimal, int8 (float32 arrays)", "ORT minimal, float32 export (float32 arrays)", results),
        "int8 vs float32 ONNX, batch 1 (median ms, float32 / int8)":
            round(latency["ORT minimal, float32 export"]["median_ms"] / latency["ORT minimal, int8"]["median_ms"], 2),
        "ONNX Runtime vs TensorFlow, batch 1 (median ms, tf.function / model.onnx)":
            round(latency["tf.function (Predictor's), uint8"]["median_ms"] / latency["ORT minimal, model.onnx, uint8"]["median_ms"], 2),
        "feature cache warm vs cold": gain("features warm (extract, all cached)", "features cold (extract, empty cache)", results),
    }
    accuracy = {
        "data": args.check_data, "n": report.n, "accuracy_float32": round(report.accuracy_float32, 5),
        "accuracy_int8": round(report.accuracy_int8, 5), "change_points": round(report.change_points, 2),
        "flipped": report.flipped, "max_abs_diff_p_dog": round(report.max_abs_diff, 4),
        "within_half_a_point": abs(report.change_points) <= ACCURACY_BUDGET_POINTS,
        "calibration": {"data": args.calibration, "images": args.calibration_images, "seconds": round(quantise_s, 1)},
    }
    command = "python benchmarks/bench_lite0.py " + " ".join(argv if argv is not None else sys.argv[1:])
    summary = {
        "command": command.strip(), "machine": m, "model": str(model_file), "model_sha256": model_sha,
        "model_onnx": onnx_file, "photos": args.photos, "n": args.n, "chunk": args.chunk, "rounds": args.rounds,
        "batch": BATCH, "load_average_1min": {"start": start_loads, "each_round": [round(x, 2) for x in round_loads], "end": end_load},
        "throughput": results, "batch1_latency": latency, "catdog_predict_cli": cli, "gains": gains, "int8_accuracy": accuracy,
        "throughput_seconds": round(throughput_s, 1), "wall_seconds": round(time.time() - wall0, 1),
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall0)),
        "not_in_graph": {"model.onnx": "uint8 in; P(dog) and the not-a-pet score out",
                         "float32 export": "float32 in; calibrated P(dog) and the not-a-pet score out",
                         "Keras model.predict": "P(dog) only; the ImageNet logits are computed (tied into the graph) but the score is not"},
    }
    print_report(summary)
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
        print(f"written to {args.out}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


def print_report(s: dict) -> None:
    line = machine_line(s["machine"])
    rounds, n = s["rounds"], s["n"]
    print("")
    print(f"{line}; load average (1 min) start {s['load_average_1min']['start']}, "
          f"rounds {s['load_average_1min']['each_round']}, end {s['load_average_1min']['end']:.2f}")
    print(f"model sha256 {s['model_sha256']}; {n} photos x {rounds} rounds, chunks of {s['chunk']} rotating, batch {s['batch']}")
    header = f"{'path':<48}{'images/s':>10}{'ms/img med':>12}{'ms/img min':>12}"
    print(header)
    print("-" * len(header))
    for name, r in s["throughput"].items():
        print(f"{name:<48}{r['images_per_s']:>10.1f}{r['chunk_ms_per_image_median']:>12.2f}{r['chunk_ms_per_image_min']:>12.2f}")
    print("")
    print(f"batch 1 ({line}):")
    for name, r in s["batch1_latency"].items():
        print(f"  {name:<36} median {r['median_ms']:.2f} ms, p95 {r['p95_ms']:.2f} ms")
    print(f"catdog predict --json, {n} files ({line}):")
    for backend, r in s["catdog_predict_cli"].items():
        print(f"  --backend {backend:<12} wall {r['wall_s']} s (best {r['best_wall_s']} s, {r['images_per_s']} images/s)")
    a = s["int8_accuracy"]
    print(f"int8 accuracy ({line}): {a['n']} photos, float32 {a['accuracy_float32']:.4f}, int8 {a['accuracy_int8']:.4f}, "
          f"change {a['change_points']:+.2f} points, {a['flipped']} labels flipped; "
          f"{'within' if a['within_half_a_point'] else 'NOT within'} {ACCURACY_BUDGET_POINTS} points")
    print("gains, each against its own peer:")
    for name, value in s["gains"].items():
        print(f"  {name}: {value:.2f}x")


def _version(package: str) -> str:
    try:
        return __import__(package).__version__
    except ImportError:
        return "not installed"


if __name__ == "__main__":
    sys.exit(main())
