"""Your own two classes with lite0: accuracy on unseen photos and the wall time of a cold-cache training.

A proxy for "a user's own pair of classes": two kinds from `../shared/data/not-pets`
(the kind is in each file name). For each pair and each training size, a seeded
draw of `n` training photos (half per class, fewer when a class has fewer), the
rest held out as the test photos; then, in a fresh CATDOG_HOME (nothing cached:
not the converted Lite0 weights, not one photo's features), `catdog train --model
lite0` is timed from the command's start to its end, and `catdog evaluate` scores
the held-out photos. Nothing here picks a setting: the preset's defaults are used.

    python benchmarks/own_classes.py --out docs/own_classes.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOT_PETS = REPO.parent / "shared" / "data" / "not-pets"
# (folder, class a, class b): our copy of TrashNet has no plastic, so glass vs metal stands for glass vs plastic.
PAIRS = [("objects", "glass", "metal"), ("objects", "paper", "cardboard"), ("clothing", "shirt", "pants")]
SIZES = (40, 300)
MIN_TEST = 20  # held-out photos per class, at least


def machine() -> dict:
    from catdog.hardware import cpu_family, lscpu_model_name

    return {"lscpu_model_name": lscpu_model_name(), "cpu_family": cpu_family(), "cores": os.cpu_count(),
            "python": platform.python_version()}


def files_of(folder: str, kind: str) -> list[Path]:
    return sorted(p for p in (NOT_PETS / folder).iterdir() if p.name.split("_", 1)[0] == kind)


def split(a: list[Path], b: list[Path], n: int, seed: int) -> tuple[dict, dict]:
    rng = random.Random(seed)
    a, b = a[:], b[:]
    rng.shuffle(a)
    rng.shuffle(b)
    per = n // 2
    take_a, take_b = min(per, len(a) - MIN_TEST), min(per, len(b) - MIN_TEST)
    return {"a": a[:take_a], "b": b[:take_b]}, {"a": a[take_a:], "b": b[take_b:]}


def lay_out(root: Path, names: tuple[str, str], chosen: dict) -> Path:
    for key, name in zip(("a", "b"), names):
        (root / name).mkdir(parents=True)
        for path in chosen[key]:
            shutil.copy2(path, root / name / path.name)  # copies: a dataset never follows links out of its folder
    return root


def one(folder: str, a: str, b: str, n: int, seed: int) -> dict:
    train_files, test_files = split(files_of(folder, a), files_of(folder, b), n, seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train_dir = lay_out(tmp / "train", (a, b), train_files)
        test_dir = lay_out(tmp / "test", (a, b), test_files)
        env = {**os.environ, "CATDOG_HOME": str(tmp / "home")}
        env.pop("CATDOG_CACHE_DIR", None)
        start = time.time()
        proc = subprocess.run([sys.executable, "-m", "catdog", "train", "--data", str(train_dir), "--model", "lite0",
                               "--runs-dir", str(tmp / "runs"), "--run-id", "own", "--no-lock"],
                              env=env, capture_output=True, text=True, cwd=REPO)
        wall = time.time() - start
        if proc.returncode:
            raise SystemExit(f"training failed:\n{proc.stderr[-3000:]}")
        ev = subprocess.run([sys.executable, "-m", "catdog", "evaluate", "--model", str(tmp / "runs" / "own"), "--data", str(test_dir),
                             "--json"], env=env, capture_output=True, text=True, cwd=REPO)
        if ev.returncode:
            raise SystemExit(f"evaluate failed:\n{ev.stderr[-3000:]}")
        result = json.loads(ev.stdout)
        record = json.loads((tmp / "runs" / "own" / "config.json").read_text())
    return {
        "pair": f"{folder}: {a} vs {b}", "train_photos": {a: len(train_files["a"]), b: len(train_files["b"])},
        "test_photos": {a: len(test_files["a"]), b: len(test_files["b"])}, "seed": seed,
        "wall_seconds_cold_cache": round(wall, 1), "test_accuracy": result.get("accuracy"),
        "test_ece": result.get("ece"), "openset": (record.get("openset") or {}).get("parts"),
        "calibration_temperature": (record.get("calibration") or {}).get("temperature"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="write the results here as JSON")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not NOT_PETS.is_dir():
        raise SystemExit(f"{NOT_PETS} is missing: this benchmark needs ../shared/data/not-pets")
    info = machine()
    print(f"machine: {info['lscpu_model_name']}, cpu family {info['cpu_family']}, {info['cores']} cores")
    rows = []
    for folder, a, b in PAIRS:
        for n in SIZES:
            row = one(folder, a, b, n, args.seed)
            rows.append(row)
            print(f"{row['pair']:<32} train {sum(row['train_photos'].values()):>4} ({row['train_photos']}) "
                  f"test {sum(row['test_photos'].values()):>4}: accuracy {row['test_accuracy']:.4f}, "
                  f"{row['wall_seconds_cold_cache']:.1f}s from start to finish (cold cache)", flush=True)
    if args.out:
        record = {"machine": info, "command": "python benchmarks/own_classes.py", "rows": rows}
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
