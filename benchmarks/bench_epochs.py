"""Compact's training speed, old code against new, in one script: images per second after the first epoch.

    git worktree add /tmp/catdog-old f0690a7
    python benchmarks/bench_epochs.py --old /tmp/catdog-old --sizes 128,160 --photos 2000 --epochs 3

Each tree trains `compact` with its own `python -m catdog train` (real `fit`
epochs, tf.data pipeline and in-model augmentation included) on the same
photos, at each size, the two trees taking turns (old, new, then new, old in
the next round), so other work on the machine slows both alike. The figure
is the training photos times the epochs after the first, over those epochs'
wall time (`metrics.jsonl`; each epoch's few validation batches included).
Every run gets its own CATDOG_HOME, so no other training's lock or cache is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from augment_check import SHARED, subset_folder  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def machine() -> str:
    """lscpu's model name and /proc/cpuinfo's cpu family, with the core count."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=30).stdout
        name = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), "?")
    except OSError:
        name = "?"
    family = "?"
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        family = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("cpu family"))
    except (OSError, StopIteration):
        pass
    return f"lscpu model name: {name}; /proc/cpuinfo cpu family: {family}; {os.cpu_count()} cores"


def train_once(tree: Path, folder: Path, size: int, args, work: Path, flags: list[str]) -> dict:
    """One `catdog train` in `tree`; returns its images/second after the first epoch."""
    home = Path(tempfile.mkdtemp(prefix="home-", dir=work))
    env = dict(os.environ, PYTHONPATH=str(tree), CATDOG_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    command = [
        sys.executable, "-m", "catdog", "train", "--data", str(folder), "--model", "compact", "--epochs", str(args.epochs),
        "--image-size", str(size), "--val-split", "0.05", "--calibration-split", "0", "--precision", "float32",
        "--no-checkpoint", "--cache", "memory", "--seed", "1337", "--runs-dir", str(home / "runs"), *flags,
    ]
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=args.timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{tree}: catdog train failed ({done.returncode}): {done.stderr[-2000:]}")
    run = next((home / "runs").iterdir())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    n_train = json.loads((run / "config.json").read_text())["n_train"]
    later = [r["seconds"] for r in rows if r["epoch"] > 1]
    return {"ips": n_train * len(later) / sum(later), "epoch_seconds": [r["seconds"] for r in rows], "n_train": n_train}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="a checkout of the old code (e.g. git worktree add /tmp/catdog-old f0690a7)")
    parser.add_argument("--new", default=str(REPO), help="the new code (default: this checkout)")
    parser.add_argument("--new-flags", default="", help="extra `catdog train` flags for the new code only, e.g. '--augment crop'")
    parser.add_argument("--data", default=str(SHARED / "catdog-small" / "train"))
    parser.add_argument("--photos", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sizes", default="128,160")
    parser.add_argument("--rounds", type=int, default=1, help="old/new pairs per size (the order alternates)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds one training may take")
    parser.add_argument("--out", help="write the results as JSON to this file")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch (graph tracing) is left out")
    trees = {"old": Path(args.old).resolve(), "new": Path(args.new).resolve()}
    flags = {"old": [], "new": shlex.split(args.new_flags)}
    print(machine(), flush=True)
    print(f"load average before: {os.getloadavg()[0]:.1f}", flush=True)
    results: dict = {"machine": machine(), "epochs": args.epochs, "new_flags": args.new_flags, "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="catdog-bench-epochs-") as tmp:
        folder = subset_folder(Path(args.data), args.photos, Path(tmp) / "train")
        for size in (int(s) for s in args.sizes.split(",")):
            runs: dict = {"old": [], "new": []}
            for r in range(args.rounds * 2):
                name = ("old", "new", "new", "old")[r % 4]
                t0 = time.time()
                runs[name].append(train_once(trees[name], folder, size, args, Path(tmp), flags[name]))
                print(f"{size} px {name}: {runs[name][-1]['ips']:.1f} images/s after epoch 1 "
                      f"(epochs {runs[name][-1]['epoch_seconds']} s; {time.time() - t0:.0f} s in all)", flush=True)
            ips = {k: sum(x["ips"] for x in v) / len(v) for k, v in runs.items()}
            results["sizes"][size] = {"runs": runs, "old_ips": ips["old"], "new_ips": ips["new"], "speedup": ips["new"] / ips["old"]}
            print(f"{size} px: old {ips['old']:.1f}, new {ips['new']:.1f} images/s; speedup {ips['new'] / ips['old']:.2f}", flush=True)
    results["load_average_after"] = round(os.getloadavg()[0], 1)
    print(f"load average after: {results['load_average_after']}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
