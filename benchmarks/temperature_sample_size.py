"""Which temperature is best after a warm start on a small calibration split: kept, fitted, or fitted with a prior?

    python -m benchmarks.temperature_sample_size --work DIR [--runs old-defaults-1337,b16-1337] [--subsets 200]

Uses the runs and the proxy collection that `benchmarks.warm_start_recipe --work DIR`
left. For each run it scores the held-out rest once (raw outputs), then draws many
calibration splits of n photos from the rest (n = 24, the Train page's split of 300
photos, and 84) and compares, on the photos not drawn: the starting model's temperature
kept, the plain fit on the n photos, and MAP fits with a log-normal prior around the
starting temperature (SD 0.1 to 0.5 on log T). Prints mean held-out log loss and ECE
(and the ECE of the worst tenth of draws), and the median T.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from benchmarks.warm_start_recipe import N_TRAIN, SPLIT_SEED
from catdog import calibration as cal
from catdog import data
from catdog.hardware import cpu_model

SIZES = (24, 84)
SIGMAS = (0.1, 0.2, 0.3, 0.5)


def rest_outputs(work: Path, run: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(labels, raw P(class 1)) of the run's model on the proxy photos it never saw, and its starting temperature."""
    from catdog.predict import Predictor, calibration_of, resolve_model
    from catdog.runs import Run

    predictor = Predictor.load(work / "runs" / run, backend="tensorflow")
    images, _ = data.load_labelled_folder(str(work / "proxy"), predictor.class_names)
    rest, _ = data.split(images, N_TRAIN / len(images), SPLIT_SEED)
    decoded = data.decode_images(rest, predictor.image_size, cache="memory")
    arrays = np.asarray(decoded.images)
    raw = np.concatenate([predictor.raw_probs(arrays[s : s + 128]) for s in range(0, len(arrays), 128)]).astype(np.float64)
    start_from = Run(work / "runs" / run).config().get("init_from")
    start = calibration_of(resolve_model(start_from)[1])[0] if start_from else cal.DEFAULT_TEMPERATURE
    return np.asarray(decoded.labels), raw, start


def compare(labels, raw, start: float, n: int, subsets: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    scores: dict[str, list[tuple[float, float, float]]] = {}
    for _ in range(subsets):
        pick = rng.permutation(labels.size)
        fit_on, rest = pick[:n], pick[n:]
        candidates = {"kept": start, "plain fit": cal.fit_temperature(labels[fit_on], raw[fit_on], warn=False)}
        for sigma in SIGMAS:
            candidates[f"prior SD {sigma}"] = cal.fit_temperature(labels[fit_on], raw[fit_on], prior=start, prior_sigma=sigma, warn=False)
        for name, t in candidates.items():
            p = cal.apply_temperature(raw[rest], t)
            scores.setdefault(name, []).append((cal.log_loss(labels[rest], p), cal.expected_calibration_error(labels[rest], p), t))
    return {
        name: {
            "log_loss": round(float(np.mean([v[0] for v in values])), 4),
            "ece": round(float(np.mean([v[1] for v in values])), 4),
            "ece_worst_tenth": round(float(np.quantile([v[1] for v in values], 0.9)), 4),
            "median_t": round(float(np.median([v[2] for v in values])), 3),
        }
        for name, values in scores.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="the working folder of benchmarks.warm_start_recipe")
    parser.add_argument("--runs", default=None, help="comma-separated run ids under WORK/runs (default: all)")
    parser.add_argument("--subsets", type=int, default=200)
    args = parser.parse_args(argv)
    work = Path(args.work)
    names = args.runs.split(",") if args.runs else sorted(p.name for p in (work / "runs").iterdir() if (p / "model.keras").exists())
    print(f"CPU: {cpu_model()} · {os.cpu_count()} cores")
    report = {}
    for run in names:
        labels, raw, start = rest_outputs(work, run)
        best = cal.fit_temperature(labels, raw, warn=False)
        print(f"\n{run}: {labels.size} photos · starting T {start:.3f} · T fitted on all of them {best:.3f}")
        print("| n | temperature | held-out log loss | ECE | ECE, worst tenth | median T |\n|---|---|---|---|---|---|")
        report[run] = {"start": start, "best_on_rest": best}
        for n in SIZES:
            rows = compare(labels, raw, start, n, args.subsets)
            report[run][n] = rows
            for name, r in rows.items():
                cells = f"{r['log_loss']:.4f} | {r['ece']:.4f} | {r['ece_worst_tenth']:.4f} | {r['median_t']:.2f}"
                print(f"| {n} | {name} | {cells} |", flush=True)
    print(json.dumps({"cpu": cpu_model(), "runs": report}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
