"""How many calibration photos does a fitted temperature need to beat the starting model's?

    python -m benchmarks.temperature_sample_size --model RUN --data DIR [--start 1.62] [--subsets 40]

Scores DIR once with the model (raw outputs), then, for calibration splits of n photos
drawn from DIR, compares three temperatures on the photos not drawn: the plain fit on
the n photos, the starting temperature kept (--start, default the one saved with the
starting model of the run), and `catdog.calibration.choose_temperature`'s choice. Prints,
per n, the spread of the fitted log T, how often the fit ends at a search bound, and the
mean held-out log loss and ECE of each choice.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from catdog import calibration as cal
from catdog import data
from catdog.hardware import cpu_model

SIZES = (2, 24, 50, 100, 200, 400, 800)


def raw_outputs(model: str, folder: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(labels, raw P(class 1), the temperature saved with the run's starting model)."""
    from catdog.predict import Predictor, calibration_of, resolve_model
    from catdog.runs import Run

    predictor = Predictor.load(model, backend="tensorflow")
    images, _ = data.load_labelled_folder(folder, predictor.class_names)
    decoded = data.decode_images(images, predictor.image_size, cache="memory")
    arrays = np.asarray(decoded.images)
    raw = np.concatenate([predictor.raw_probs(arrays[s : s + 128]) for s in range(0, len(arrays), 128)])
    start_from = Run(resolve_model(model)[0].parent).config().get("init_from")
    start = calibration_of(resolve_model(start_from)[1])[0] if start_from else cal.DEFAULT_TEMPERATURE
    return np.asarray(decoded.labels), raw.astype(np.float64), start


def measure(labels, raw, start: float, n: int, subsets: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    rows = {"fit": [], "kept": [], "chosen": []}
    log_t, at_bound, kept = [], 0, 0
    for _ in range(subsets):
        pick = rng.permutation(labels.size)
        cal_idx, rest = pick[:n], pick[n:]
        fitted = cal.fit_temperature(labels[cal_idx], raw[cal_idx], warn=False)
        choice = cal.choose_temperature(labels[cal_idx], raw[cal_idx], start, start_is_calibrated=start != 1.0)
        log_t.append(np.log(fitted))
        at_bound += cal.at_bound(fitted)
        kept += choice.kept
        for name, t in (("fit", fitted), ("kept", start), ("chosen", choice.temperature)):
            p = cal.apply_temperature(raw[rest], t)
            rows[name].append((cal.log_loss(labels[rest], p), cal.expected_calibration_error(labels[rest], p)))
    summary = {"n": n, "sd_log_t": round(float(np.std(log_t)), 3), "at_bound": at_bound / subsets, "kept": kept / subsets}
    for name, values in rows.items():
        summary[f"log_loss_{name}"] = round(float(np.mean([v[0] for v in values])), 4)
        summary[f"ece_{name}"] = round(float(np.mean([v[1] for v in values])), 4)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a run folder or .keras file")
    parser.add_argument("--data", required=True, help="labelled folder to draw calibration splits from")
    parser.add_argument("--start", type=float, default=None, help="the starting temperature (default: the run's starting model's)")
    parser.add_argument("--subsets", type=int, default=40)
    args = parser.parse_args(argv)
    labels, raw, start = raw_outputs(args.model, args.data)
    start = args.start or start
    full = cal.fit_temperature(labels, raw, warn=False)
    print(f"CPU: {cpu_model()} · {labels.size} photos · start T {start:.3f} · T fitted on all of them {full:.3f}")
    print("| n | SD of fitted log T | fits at a bound | choice kept the start | log loss: fit / kept / chosen | ECE: fit / kept / chosen |")
    print("|---|---|---|---|---|---|")
    results = []
    for n in SIZES:
        if n >= labels.size:
            continue
        r = measure(labels, raw, start, n, args.subsets)
        results.append(r)
        print(f"| {n} | {r['sd_log_t']:.3f} | {r['at_bound']:.0%} | {r['kept']:.0%} | {r['log_loss_fit']:.4f} / {r['log_loss_kept']:.4f} / "
              f"{r['log_loss_chosen']:.4f} | {r['ece_fit']:.4f} / {r['ece_kept']:.4f} / {r['ece_chosen']:.4f} |", flush=True)
    print(json.dumps({"cpu": cpu_model(), "start": start, "full_fit": full, "rows": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
