"""A short, equal-cost comparison of augmentations on transformed copies of the validation photos.

Each variant warm-starts `compact` from the bundled model and trains the same
few epochs on the same photos of catdog-small/train through `catdog.training`
(a `TrainConfig`, `train`), then every model (the bundled one too) is scored on
the copies of catdog-small/validation that `robustness_eval.py` makes (close
and aspect crops, grayscale, JPEG, half resolution, rotation). Probabilities
are the networks' own (uncalibrated), so every row is scored alike.

    python benchmarks/augment_check.py --variants standard,crop --epochs 3 --photos 3000 --out results.json

Never trains on the validation folder; it is only measured.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import robustness_eval  # noqa: E402

from catdog import data  # noqa: E402
from catdog.hardware import cpu_model  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def subset_folder(source: Path, photos: int, out: Path) -> Path:
    """`photos` files of `source` (half per class, evenly spread), copied to out/{cats,dogs}."""
    images = data.discover(source).train
    labels = np.asarray(images.labels)
    for label, name in ((0, "cats"), (1, "dogs")):
        idx = np.flatnonzero(labels == label)
        pick = idx[np.linspace(0, len(idx) - 1, min(len(idx), photos // 2)).astype(int)]
        (out / name).mkdir(parents=True, exist_ok=True)
        for i in pick:
            shutil.copyfile(images.paths[i], out / name / images.paths[i].name)
    return out


def train_variant(augment: str, folder: Path, runs_dir: Path, args) -> tuple[Path, float]:
    """Warm-start compact from the bundled model and train `args.epochs` epochs with `augment`."""
    from catdog.training import TrainConfig, train

    cfg = TrainConfig(
        data=str(folder), model="compact", epochs=args.epochs, image_size=args.size, augment=augment,
        init_from="bundled", val_split=0.05, calibration_split=0.0, precision="float32", seed=args.seed,
        checkpoint=False, cache="memory",
    )
    t0 = time.time()
    run = train(cfg, runs_dir=runs_dir, run_id=f"check-{augment}", verbose=0, stream=io.StringIO(), lock=False, handle_signals=False)
    return run.model_path, time.time() - t0


def score_models(models: dict[str, Path], size: int, limit: int | None) -> dict:
    """{model: {copy: scores}} on the transformed validation photos, each copy decoded once for all models."""
    from catdog.predict import Predictor

    files, labels = robustness_eval.labelled_files(SHARED / "catdog-small" / "validation", ["cat", "dog"], limit)
    predictors = {name: Predictor.load(path, backend="tensorflow", precision="float32") for name, path in models.items()}
    table: dict = {name: {} for name in models}
    for copy, transform in robustness_eval.TRANSFORMS.items():
        arrays = robustness_eval.transformed_arrays(files, size, transform)
        for name, predictor in predictors.items():
            raw = np.concatenate([predictor.raw_probs(arrays[s : s + 64]) for s in range(0, len(arrays), 64)])
            table[name][copy] = robustness_eval.scores(labels, raw)
        print(f"{copy:20s} " + "  ".join(f"{n} {table[n][copy]['accuracy']:.4f}" for n in models), flush=True)
    return {"n": len(files), "scores": table}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="standard,crop", help="comma-separated augment names (catdog.models.AUGMENTATIONS)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--photos", type=int, default=3000, help="training photos taken from catdog-small/train")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--limit", type=int, default=None, help="score only the first N validation photos of each class")
    parser.add_argument("--out", help="write the results as JSON to this file")
    args = parser.parse_args(argv)
    if not (SHARED / "catdog-small" / "validation").is_dir():
        print(f"skipped: {SHARED / 'catdog-small'} is missing", file=sys.stderr)
        return 0
    from catdog.predict import bundled_model_dir

    print(f"CPU: {cpu_model()}; load average {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="catdog-augcheck-") as tmp:
        folder = subset_folder(SHARED / "catdog-small" / "train", args.photos, Path(tmp) / "train")
        models, seconds = {"bundled (before)": bundled_model_dir() / "model.keras"}, {}
        for augment in args.variants.split(","):
            models[augment], seconds[augment] = train_variant(augment, folder, Path(tmp) / "runs", args)
            print(f"trained {augment}: {seconds[augment]:.0f} s", flush=True)
        result = score_models(models, args.size, args.limit)
    result.update(
        cpu=cpu_model(), epochs=args.epochs, photos=args.photos, size=args.size, seed=args.seed,
        train_seconds={k: round(v) for k, v in seconds.items()}, load_average=round(os.getloadavg()[0], 1),
    )
    print(json.dumps(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
