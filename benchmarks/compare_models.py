"""Two or more models on the same photos, in one run: labelled photos, their transformed copies, non-pets.

    python benchmarks/compare_models.py --model before=OLD_RUN --model after=assets/model \\
        --data ../shared/data/catdog-small/validation \\
        --not-pets ../shared/data/not-pets/clothing --not-pets ../shared/data/not-pets/objects \\
        [--limit N] [--json results.json]

Every copy of every photo (`robustness_eval.TRANSFORMS`) is decoded once and scored by each
model, so the figures compare like with like. For each copy it prints accuracy, ECE and log
loss of the calibrated P(class 1), and the share of these pet photos the model's "not a cat or
dog" check wrongly flags; for each non-pet folder, the share flagged (`catdog evaluate
--not-pets`'s figure). Prints the CPU with the figures and a JSON summary at the end.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

import robustness_eval  # noqa: E402

from catdog.calibration import apply_temperature  # noqa: E402
from catdog.errors import CatdogError  # noqa: E402
from catdog.evaluate import evaluate_not_pets  # noqa: E402
from catdog.hardware import cpu_model  # noqa: E402
from catdog.predict import Predictor  # noqa: E402


def named_model(text: str) -> tuple[str, str]:
    """'NAME=PATH' (or a bare PATH, named by its folder) -> (name, path)."""
    name, sep, path = text.partition("=")
    return (name, path) if sep else (Path(text).name, text)


def score_copy(predictor: Predictor, arrays: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, ECE, log loss of the calibrated P(class 1), and the share the check wrongly flags."""
    raw, checks = [], []
    for start in range(0, len(arrays), 64):
        p, score = predictor.raw_outputs(arrays[start : start + 64])
        raw.append(p)
        checks.append(predictor.is_not_pet(score))
    probs = apply_temperature(np.concatenate(raw), predictor.temperature)
    row = robustness_eval.scores(labels, probs, predictor.threshold)
    row["wrongly_flagged"] = round(float(np.concatenate(checks).mean()), 4) if predictor.openset is not None else None
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, type=named_model,
                        help="NAME=run folder or .keras file; repeat for each model")
    parser.add_argument("--data", required=True, help="labelled folder (cats/ + dogs/)")
    parser.add_argument("--not-pets", action="append", default=[], help="a folder of photos with no cat or dog; repeatable")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N photos of each class")
    parser.add_argument("--json", default=None, help="also write the summary to this file")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.data):
        print(f"skipped: {args.data} is not a folder", file=sys.stderr)
        return 0
    models = {name: Predictor.load(path) for name, path in args.model}
    first = next(iter(models.values()))
    files, labels = robustness_eval.labelled_files(args.data, first.class_names, args.limit)
    print(f"CPU: {cpu_model()} · {len(files)} photos from {args.data}")
    for name, predictor in models.items():
        print(f"{name}: {predictor.source}")
    copies: dict[str, dict] = {}
    for copy, transform in robustness_eval.TRANSFORMS.items():
        t0 = time.time()
        arrays = {size: robustness_eval.transformed_arrays(files, size, transform)
                  for size in sorted({p.image_size for p in models.values()})}
        copies[copy] = {name: score_copy(p, arrays[p.image_size], labels) for name, p in models.items()}
        cells = "  ".join(f"{name} acc {r['accuracy']:.4f} ECE {r['ece']:.4f} flagged {r['wrongly_flagged']}"
                          for name, r in copies[copy].items())
        print(f"{copy:20s} {cells}  ({time.time() - t0:.0f} s)", flush=True)
    not_pets: dict[str, dict] = {}
    for folder in args.not_pets:
        not_pets[folder] = {}
        for name, predictor in models.items():
            try:
                found = evaluate_not_pets(predictor, folder)
            except CatdogError as exc:  # a model without a check: said, and the others are still measured
                not_pets[folder][name] = {"error": str(exc)}
                continue
            not_pets[folder][name] = {"n": found["n"], "flagged": found["flagged"], "share": round(found["share"], 4)}
        print(f"not-pets {folder}: " + "  ".join(
            f"{name} {r['flagged']}/{r['n']} ({r['share']:.1%})" if "error" not in r else f"{name} no check"
            for name, r in not_pets[folder].items()), flush=True)
    summary = {"cpu": cpu_model(), "data": args.data, "n": len(files),
               "models": {name: p.source for name, p in models.items()}, "copies": copies, "not_pets": not_pets}
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
