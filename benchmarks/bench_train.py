"""Training throughput: the notebook's pipeline against catdog's.

    python benchmarks/bench_train.py --data ../shared/data/catdog-small/train [--separate]

1. notebook: `image_dataset_from_directory` (batch 32, 256x256, int labels)
   + `map(process)` (cast float32, /255) + the seed network, float32.
2. catdog: `decode_images` (decode once, in memory) + `make_tf_dataset`
   + the seed preset with catdog's automatic precision and XLA choice.

Both train the same network on the same folder. The two are timed in
alternating chunks of steps, so other processes competing for the CPU slow
both alike. catdog's one-off decoding is timed on its own and reported, both
per epoch and amortised over 10 epochs. The last line is catdog's default
against the notebook: a lumped figure (input pipeline, precision, fused
BatchNorm and process settings at once), and says so.

`--separate` splits it: five pipelines (the notebook's; catdog's input
pipeline in float32 and in mixed_bfloat16, each with Keras' BatchNorm and with
the fused one), all with the same process settings, timed in rotating chunks,
and each gain printed against its one peer that differs in that one thing.

catdog also sets a process-wide TensorFlow setting at start-up (the BFC CPU
allocator, see catdog/__init__.py), which cannot differ between two pipelines
in one process. So by default each pipeline lives in its own worker process,
the notebook's with TensorFlow's defaults, driven step chunk by step chunk
from this one. `--one-process` runs both in this process instead (both then
get catdog's process settings, and only the pipeline and model settings differ).
"""

from __future__ import annotations

import argparse
import io
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
# --separate: catdog's input pipeline at a fixed (precision, fused BatchNorm); "catdog" alone is its automatic choice.
VARIANTS = {
    "float32": ("float32", False),
    "float32-fused": ("float32", True),
    "bfloat16": ("mixed_bfloat16", False),
    "bfloat16-fused": ("mixed_bfloat16", True),
}
SEPARATE = ("notebook", *VARIANTS)
# Each gain of --separate: (what it measures, the pipeline, its peer differing in that one thing).
GAINS = (
    ("decode-once input pipeline (both float32, Keras BatchNorm)", "float32", "notebook"),
    ("fused BatchNorm in float32", "float32-fused", "float32"),
    ("fused BatchNorm in mixed_bfloat16", "bfloat16-fused", "bfloat16"),
    ("mixed_bfloat16 against float32, Keras BatchNorm", "bfloat16", "float32"),
    ("mixed_bfloat16 against float32, fused BatchNorm", "bfloat16-fused", "float32-fused"),
)


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


def catdog_setup(data: str, size: int, n_decode: int, precision: str = "auto", fused: bool | None = None):
    """catdog's path: decode once, then batches of uint8 from memory.

    Args:
        precision: the dtype policy; "auto" is catdog's choice for the seed preset.
        fused: fused BatchNorm or Keras'; None is catdog's choice for that precision.
    """
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
    precision = resolve_precision(precision, cpu_bf16=get_preset("seed").cpu_bf16)
    model = build_model("seed", size, precision=precision)
    if fused is None:
        fused = precision in get_preset("seed").fuse_batch_norm_in  # as catdog.training.train decides
    fused = bool(fused and fuse_batch_norm(model))
    ds = cdata.make_tf_dataset(decoded, BATCH, shuffle=True).repeat()
    return model, ds, {"decode_s": decode_s, "n_decoded": len(decoded), "precision": precision, "fused": fused,
                       "jit": bool(model.jit_compile)}


def setup_pipeline(name: str, args):
    """The model, a batch iterator and facts (decode time, precision…) for the pipeline called `name`."""
    if name == "notebook":
        return notebook_model(args.image_size), iter(notebook_pipeline(args.data, args.image_size)), {}
    precision, fused = VARIANTS.get(name, ("auto", None))
    model, ds, info = catdog_setup(args.data, args.image_size, args.decode, precision, fused)
    return model, iter(ds), info


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
    model, it, info = setup_pipeline(args.worker, args)
    time_steps(model, it, args.warmup)
    print(json.dumps(info), flush=True)
    peak = rss_mb()
    for line in sys.stdin:
        n = int(line)
        seconds = time_steps(model, it, n)
        peak = max(peak, rss_mb())
        print(json.dumps({"seconds": seconds, "peak": peak}), flush=True)
    return 0


def pipeline_names(args) -> tuple[str, ...]:
    return SEPARATE if args.separate else ("notebook", "catdog")


def _rotated(names: tuple[str, ...], k: int) -> list[str]:
    """The names in chunk k's order: each chunk starts one further along, so each runs first as often."""
    k %= len(names)
    return list(names[k:] + names[:k])


def run_workers(args) -> dict:
    """Every pipeline in its own worker process, timed in rotating chunks."""
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
    names = pipeline_names(args)
    procs = {}
    info: dict = {}
    for name in names:  # set up one after the other: they would fight over the cores
        # --separate: the notebook gets catdog's process settings too, so that only the input pipeline differs.
        env = dict(os.environ) if name != "notebook" or args.separate else dict(TF_DEFAULT_ENV)
        procs[name] = subprocess.Popen(base + ["--worker", name], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        info[name] = json.loads(_reply(procs[name]))
    seconds = {k: 0.0 for k in procs}
    peak = {k: 0.0 for k in procs}
    done, chunk = 0, max(1, args.chunk)
    while done < args.steps:
        n = min(chunk, args.steps - done)
        for name in _rotated(names, done // chunk):
            procs[name].stdin.write(f"{n}\n")
            procs[name].stdin.flush()
            reply = json.loads(_reply(procs[name]))
            seconds[name] += reply["seconds"]
            peak[name] = reply["peak"]
        done += n
    for p in procs.values():
        p.stdin.close()
        p.wait(timeout=60)
    return {"info": info, "seconds": seconds, "peak": peak}


def _reply(proc) -> str:
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"benchmark worker {proc.args[-1]} exited with {proc.wait()}")
    return line


def run(args) -> dict:
    """Every pipeline in this process: warm each up, then time them in rotating chunks."""
    names = pipeline_names(args)
    pairs, info = {}, {}
    for name in names:
        model, it, info[name] = setup_pipeline(name, args)
        pairs[name] = (model, it)
    seconds = {k: 0.0 for k in pairs}
    peak = {k: rss_mb() for k in pairs}
    for model, it in pairs.values():
        time_steps(model, it, args.warmup)
    chunk = max(1, args.chunk)
    done = 0
    while done < args.steps:
        n = min(chunk, args.steps - done)
        for name in _rotated(names, done // chunk):
            seconds[name] += time_steps(*pairs[name], n)
            peak[name] = max(peak[name], rss_mb())
        done += n
    return {"info": info, "seconds": seconds, "peak": peak}


def report(args, r: dict, load_before: float, load_after: float, out=sys.stdout) -> dict[str, float]:
    """Print the table and the gains; returns each pipeline's images per second."""
    from catdog.hardware import cpu_family, describe

    m = describe()
    images = args.steps * BATCH
    ips = {k: images / s for k, s in r["seconds"].items()}
    catdog_info = next(v for v in r["info"].values() if "decode_s" in v)
    decode_per_image = catdog_info["decode_s"] / max(1, catdog_info["n_decoded"])
    print(
        f"machine: {m['cpu']} (cpu family {cpu_family()}), {m['cores']} cores, fast bf16: {m['fast_bf16']}, "
        f"GPUs: {m['gpus']}, TensorFlow {m['tensorflow']}, Python {m['python']}",
        file=out,
    )
    if args.one_process:
        how = "one process, catdog's process settings for all"
    elif args.separate:
        how = "a worker process each, all with catdog's process settings"
    else:
        how = "two worker processes, the notebook's with TensorFlow's defaults"
    print(
        f"load average (1 min) before/after: {load_before:.2f} / {load_after:.2f}; timed in rotating chunks of "
        f"{args.chunk} steps; {how}",
        file=out,
    )
    print(f"seed network, {args.image_size}x{args.image_size}, batch {BATCH}, {args.warmup} warm-up + {args.steps} timed steps each",
          file=out)
    for name, info in r["info"].items():
        if "precision" in info:
            print(f"  {name}: precision {info['precision']}, fused BatchNorm {info['fused']}, XLA {info['jit']}", file=out)
    print(
        f"catdog one-off decode: {catdog_info['decode_s']:.1f} s for {catdog_info['n_decoded']} images "
        f"({decode_per_image * 1000:.1f} ms/image, {decode_per_image * EPOCH_IMAGES:.0f} s for {EPOCH_IMAGES:,})",
        file=out,
    )
    print("", file=out)
    header = f"{'pipeline':<16}{'images/s':>10}{'s/epoch':>10}{'1st epoch':>11}{'amortised':>11}{'peak RSS MB':>13}"
    print(header, file=out)
    print("-" * len(header), file=out)
    epoch, amortised = {}, {}
    for name in r["seconds"]:
        epoch[name] = EPOCH_IMAGES / ips[name]
        decode = 0.0 if name == "notebook" else decode_per_image * EPOCH_IMAGES
        amortised[name] = epoch[name] + decode / AMORTISE_EPOCHS
        print(f"{name:<16}{ips[name]:>10.2f}{epoch[name]:>10.0f}{epoch[name] + decode:>11.0f}{amortised[name]:>11.0f}"
              f"{r['peak'][name]:>13.0f}", file=out)
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
            f"the pipelines share one process; its peak RSS (getrusage): "
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB",
            file=out,
        )
    print("", file=out)
    if args.separate:
        _print_gains(ips, epoch, amortised, out)
    else:
        info = r["info"]["catdog"]
        print(
            f"catdog's default against the notebook, lumped (input pipeline + {info['precision']} + fused BatchNorm "
            f"{info['fused']} + process settings; --separate splits them): {epoch['notebook'] / amortised['catdog']:.2f}x "
            f"with the decode spread over {AMORTISE_EPOCHS} epochs, {ips['catdog'] / ips['notebook']:.2f}x steady state",
            file=out,
        )
    return ips


def _print_gains(ips: dict, epoch: dict, amortised: dict, out) -> None:
    """One line per gain, against the one pipeline that differs from it in that one thing."""
    print("each gain against its peer (images/s, timed in the same rotating chunks):", file=out)
    for what, name, peer in GAINS:
        line = (f"  {what}: {ips[name] / ips[peer]:.2f}x ({name} {1000 * BATCH / ips[name]:.0f} ms/step against "
                f"{peer} {1000 * BATCH / ips[peer]:.0f} ms/step)")
        if peer == "notebook":
            line += f"; {epoch[peer] / amortised[name]:.2f}x with the one-off decode spread over {AMORTISE_EPOCHS} epochs"
        print(line, file=out)


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
    p.add_argument("--one-process", action="store_true", help="run the pipelines in this process (all get catdog's process settings)")
    p.add_argument(
        "--separate", action="store_true",
        help="time the input pipeline, mixed_bfloat16 and fused BatchNorm apart (five pipelines, each gain against its peer)",
    )
    p.add_argument("--out", default=None, help="also write the run (command, machine, figures, gains) to this JSON file")
    p.add_argument("--worker", choices=["catdog", *SEPARATE], help=argparse.SUPPRESS)
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
        load_after = os.getloadavg()[0]
        text = io.StringIO()
        ips = report(args, result, load_before, load_after, out=text)
        print(text.getvalue(), end="")
    if args.out:
        write_result(Path(args.out), args, result, ips, text.getvalue(), (load_before, load_after))
    return 0


def write_result(path: Path, args, result: dict, ips: dict[str, float], text: str, load: tuple[float, float]) -> None:
    """The run as JSON: the command, the machine, each pipeline's figures, each gain, and the printed report."""
    import datetime

    from catdog.hardware import cpu_family, cpu_flags, describe

    m = describe()
    record = {
        "command": "python benchmarks/bench_train.py " + " ".join(sys.argv[1:]),
        "written": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"lscpu model name": m["cpu"], "cpu family": cpu_family(), "cores": m["cores"], "gpus": m["gpus"],
                    "bf16 or amx flags": sorted(f for f in cpu_flags() if "bf16" in f or f.startswith("amx")),
                    "tensorflow": m["tensorflow"], "python": m["python"]},
        "load_average_1min": {"before": round(load[0], 2), "after": round(load[1], 2)},
        "settings": {"image_size": args.image_size, "batch": BATCH, "warmup": args.warmup, "steps": args.steps,
                     "chunk": args.chunk, "one_process": args.one_process},
        "pipelines": {name: dict(result["info"][name], images_per_s=round(ips[name], 2),
                                 ms_per_step=round(1000 * BATCH / ips[name], 1), peak_rss_mb=round(result["peak"][name]))
                      for name in result["seconds"]},
        "gains": {what: {"pipeline": name, "peer": peer, "ratio": round(ips[name] / ips[peer], 3)}
                  for what, name, peer in GAINS if {name, peer} <= set(ips)},
        "report": text.splitlines(),
    }
    path.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
