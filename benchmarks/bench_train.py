"""Training throughput: the notebook's pipeline against catdog's, in one process.

    python benchmarks/bench_train.py --data ../shared/data/catdog-small/train

1. notebook: `image_dataset_from_directory` (batch 32, 256x256, int labels)
   + `map(process)` (cast float32, /255) + the seed network, float32.
2. catdog: `decode_images` (decode once, in memory) + `make_tf_dataset`
   + the seed preset with catdog's automatic precision and XLA choice.

Both train the same network on the same folder. The two are timed in
alternating chunks of steps, so other processes competing for the CPU slow
both alike. catdog's one-off decoding is timed on its own and reported, both
per epoch and amortised over 10 epochs; the final `speedup` line uses the
amortised figure.

catdog also sets a process-wide TensorFlow setting at start-up (the BFC CPU
allocator, see catdog/__init__.py), which cannot differ between two pipelines
in one process. So by default each pipeline lives in its own worker process,
the notebook's with TensorFlow's defaults, driven step chunk by step chunk
from this one. `--one-process` runs both in this process instead (both then
get catdog's process settings, and only the pipeline and model settings differ).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
TF_DEFAULT_ENV = dict(os.environ)  # before catdog is imported: what the notebook runs with
EPOCH_IMAGES = 20_000
AMORTISE_EPOCHS = 10
BATCH = 32


def notebook_model(size: int):
    """The seed network as the notebook builds it: float input already in [0, 1]."""
    import keras
    from keras import layers

    model = keras.Sequential([keras.Input((size, size, 3))])
    for filters in (32, 64, 128):
        model.add(layers.Conv2D(filters, kernel_size=(3, 3), padding="valid", activation="relu"))
        model.add(layers.BatchNormalization())
        model.add(layers.MaxPooling2D(pool_size=(2, 2), strides=2, padding="valid"))
    model.add(layers.Flatten())
    model.add(layers.Dense(128, activation="relu"))
    model.add(layers.Dropout(0.1))
    model.add(layers.Dense(64, activation="relu"))
    model.add(layers.Dropout(0.1))
    model.add(layers.Dense(1, activation="sigmoid"))
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def notebook_pipeline(data: str, size: int):
    """The notebook's input pipeline, verbatim apart from the folder."""
    import keras
    import tensorflow as tf

    ds = keras.utils.image_dataset_from_directory(
        data, labels="inferred", label_mode="int", batch_size=BATCH, image_size=(size, size), verbose=False
    )

    def process(image, label):
        image = tf.cast(image / 255.0, tf.float32)
        return image, label

    return ds.map(process).repeat()


def catdog_setup(data: str, size: int, n_decode: int):
    """catdog's default path: decode once, then batches of uint8 from memory."""
    from catdog import data as cdata
    from catdog.hardware import resolve_precision
    from catdog.models import build_model, fuse_batch_norm, get_preset

    layout = cdata.discover(data)
    files = layout.train
    if n_decode < len(files):
        # An evenly spread subset: enough for the timed steps, decode cost per image is what matters.
        pick = sorted(set(int(i) for i in __import__("numpy").linspace(0, len(files) - 1, n_decode)))
        files = cdata.ImageSet([files.paths[i] for i in pick], [files.labels[i] for i in pick])
    t0 = time.perf_counter()
    decoded = cdata.decode_images(files, size, cache="auto")
    decode_s = time.perf_counter() - t0
    precision = resolve_precision("auto", cpu_bf16=get_preset("seed").cpu_bf16)
    model = build_model("seed", size, precision=precision)
    if precision in get_preset("seed").fuse_batch_norm_in:  # as catdog.training.train decides
        fuse_batch_norm(model)
    ds = cdata.make_tf_dataset(decoded, BATCH, shuffle=True).repeat()
    return model, ds, decode_s, len(decoded), precision


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def time_steps(model, iterator, n: int) -> float:
    """Seconds for n training steps, data waits included."""
    t0 = time.perf_counter()
    for _ in range(n):
        x, y = next(iterator)
        model.train_on_batch(x, y)
    return time.perf_counter() - t0


def worker(args) -> int:
    """One pipeline in its own process: set up, warm up, then time chunks on request."""
    if args.worker == "notebook":
        model, it = notebook_model(args.image_size), iter(notebook_pipeline(args.data, args.image_size))
        info: dict = {}
    else:
        model, ds, decode_s, n, precision = catdog_setup(args.data, args.image_size, args.decode)
        it = iter(ds)
        info = {"decode_s": decode_s, "n_decoded": n, "precision": precision, "jit": bool(model.jit_compile)}
    time_steps(model, it, args.warmup)
    print(json.dumps(info), flush=True)
    peak = rss_mb()
    for line in sys.stdin:
        n = int(line)
        seconds = time_steps(model, it, n)
        peak = max(peak, rss_mb())
        print(json.dumps({"seconds": seconds, "peak": peak}), flush=True)
    return 0


def run_workers(args) -> dict:
    """Both pipelines in worker processes, timed in alternating chunks."""
    base = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--data",
        args.data,
        "--image-size",
        str(args.image_size),
        "--warmup",
        str(args.warmup),
        "--decode",
        str(args.decode),
    ]
    envs = {"notebook": dict(TF_DEFAULT_ENV), "catdog": dict(os.environ)}
    procs = {}
    info: dict = {}
    for name in ("notebook", "catdog"):  # set up one after the other: they would fight over the cores
        procs[name] = subprocess.Popen(base + ["--worker", name], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=envs[name])
        info.update(json.loads(_reply(procs[name])))
    seconds = {k: 0.0 for k in procs}
    peak = {k: 0.0 for k in procs}
    done, chunk = 0, max(1, args.chunk)
    while done < args.steps:
        n = min(chunk, args.steps - done)
        for name in (list(procs) if (done // chunk) % 2 == 0 else list(reversed(procs))):
            procs[name].stdin.write(f"{n}\n")
            procs[name].stdin.flush()
            reply = json.loads(_reply(procs[name]))
            seconds[name] += reply["seconds"]
            peak[name] = reply["peak"]
        done += n
    for p in procs.values():
        p.stdin.close()
        p.wait(timeout=60)
    return dict(info, seconds=seconds, peak=peak)


def _reply(proc) -> str:
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"benchmark worker {proc.args[-1]} exited with {proc.wait()}")
    return line


def run(args) -> dict:
    """Warm both up, then time them in alternating chunks."""
    nb_model, nb_iter = notebook_model(args.image_size), iter(notebook_pipeline(args.data, args.image_size))
    cd_model, cd_ds, decode_s, n_decoded, precision = catdog_setup(args.data, args.image_size, args.decode)
    cd_iter = iter(cd_ds)
    pairs = {"notebook": (nb_model, nb_iter), "catdog": (cd_model, cd_iter)}
    seconds = {k: 0.0 for k in pairs}
    peak = {k: rss_mb() for k in pairs}
    for model, it in pairs.values():
        time_steps(model, it, args.warmup)
    chunk = max(1, args.chunk)
    done = 0
    while done < args.steps:
        n = min(chunk, args.steps - done)
        order = list(pairs) if (done // chunk) % 2 == 0 else list(reversed(pairs))
        for name in order:
            seconds[name] += time_steps(*pairs[name], n)
            peak[name] = max(peak[name], rss_mb())
        done += n
    return {
        "seconds": seconds,
        "peak": peak,
        "decode_s": decode_s,
        "n_decoded": n_decoded,
        "precision": precision,
        "jit": bool(cd_model.jit_compile),
    }


def report(args, r: dict, load_before, load_after, out=sys.stdout) -> float:
    """Print the table and return the speedup (amortised catdog epoch vs notebook epoch)."""
    from catdog.hardware import describe

    m = describe()
    images = args.steps * BATCH
    ips = {k: images / s for k, s in r["seconds"].items()}
    decode_per_image = r["decode_s"] / max(1, r["n_decoded"])
    nb_epoch = EPOCH_IMAGES / ips["notebook"]
    cd_epoch = EPOCH_IMAGES / ips["catdog"]
    cd_first = cd_epoch + decode_per_image * EPOCH_IMAGES
    cd_amort = cd_epoch + decode_per_image * EPOCH_IMAGES / AMORTISE_EPOCHS
    print(
        f"machine: {m['cpu']}, {m['cores']} cores, fast bf16: {m['fast_bf16']}, GPUs: {m['gpus']}, TensorFlow "
        f"{m['tensorflow']}, Python {m['python']}",
        file=out,
    )
    how = (
        "one process, catdog's process settings for both"
        if args.one_process
        else "two worker processes, the notebook's with TensorFlow's defaults"
    )
    print(
        f"load average (1 min) before/after: {load_before:.2f} / {load_after:.2f}; timed in alternating chunks of "
        f"{args.chunk} steps; {how}",
        file=out,
    )
    print(
        f"seed network, {args.image_size}x{args.image_size}, batch {BATCH}, {args.warmup} warm-up + {args.steps} "
        f"timed steps each; catdog precision {r['precision']}, XLA {r['jit']}",
        file=out,
    )
    print(
        f"catdog one-off decode: {r['decode_s']:.1f} s for {r['n_decoded']} images ({decode_per_image * 1000:.1f} "
        f"ms/image, {decode_per_image * EPOCH_IMAGES:.0f} s for {EPOCH_IMAGES:,})",
        file=out,
    )
    print("", file=out)
    header = f"{'pipeline':<10}{'images/s':>10}{'s/epoch':>10}{'1st epoch':>11}{'amortised':>11}{'peak RSS MB':>13}"
    print(header, file=out)
    print("-" * len(header), file=out)
    print(
        f"{'notebook':<10}{ips['notebook']:>10.2f}{nb_epoch:>10.0f}{nb_epoch:>11.0f}{nb_epoch:>11.0f}{r['peak']['notebook']:>13.0f}",
        file=out,
    )
    print(f"{'catdog':<10}{ips['catdog']:>10.2f}{cd_epoch:>10.0f}{cd_first:>11.0f}{cd_amort:>11.0f}{r['peak']['catdog']:>13.0f}", file=out)
    print("", file=out)
    print(
        f"s/epoch: a {EPOCH_IMAGES:,}-image epoch at the measured rate; 1st epoch: plus decoding all {EPOCH_IMAGES:,} images once;",
        file=out,
    )
    print(
        f"amortised: the decode spread over {AMORTISE_EPOCHS} epochs. peak RSS: the pipeline's process, sampled after each chunk.", file=out
    )
    if args.one_process:
        print(
            f"both pipelines share one process; its peak RSS (getrusage): "
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB",
            file=out,
        )
    steady = nb_epoch / cd_epoch
    speedup = nb_epoch / cd_amort
    print(f"steady-state speedup (decode already cached): {steady:.2f}", file=out)
    print(f"speedup {speedup:.2f}", file=out)
    return speedup


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="a folder with cats/ and dogs/ (the notebook's train folder)")
    p.add_argument("--steps", type=int, default=8, help="timed steps per pipeline")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per pipeline first")
    p.add_argument("--chunk", type=int, default=2, help="steps per alternating chunk")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument(
        "--decode", type=int, default=1024, help="images catdog decodes for the timing (its per-image decode cost is extrapolated)"
    )
    p.add_argument("--quick", action="store_true", help="a smoke run: 64x64, 1 warm-up and 2 timed steps")
    p.add_argument("--one-process", action="store_true", help="run both pipelines in this process (both get catdog's process settings)")
    p.add_argument("--worker", choices=["notebook", "catdog"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.quick:
        args.steps, args.warmup, args.chunk, args.image_size, args.decode = 2, 1, 1, 64, 64
    # A fresh cache folder: the decode time is a cold one, not a read of an earlier run's cache.
    with tempfile.TemporaryDirectory(prefix="catdog-bench-") as cache:
        os.environ["CATDOG_CACHE_DIR"] = cache
        load_before = os.getloadavg()[0]
        result = run(args) if args.one_process else run_workers(args)
        report(args, result, load_before, os.getloadavg()[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
