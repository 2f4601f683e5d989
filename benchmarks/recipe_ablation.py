"""Measure training-recipe changes one at a time on catdog-small/validation.

Each variant is one `catdog.training.train` run (a `TrainConfig`) of the
`compact` network that differs from the baseline by one setting; the saved
model is then scored on the validation photos: accuracy, log loss, ECE
(15 bins, uncalibrated) and the same with horizontal-flip test-time
augmentation, plus the training time. Each result is one JSON line in `--out`
(docs/recipe_ablation.jsonl feeds the table in docs/recipe.md).

    python benchmarks/recipe_ablation.py --variants base,ls,ema --epochs 12 --size 128 --out docs/recipe_ablation.jsonl

Never trains on the validation folder; it is only measured (it is also the
per-epoch validation set of each run, which the runs never learn from).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from catdog import data
from catdog.calibration import expected_calibration_error, log_loss
from catdog.hardware import cpu_model

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WIDE = "compact_wide"
VARIANTS = {
    "base": ("compact as before this round (flip, rotate, zoom, contrast; cosine lr)", {}),
    "ls": ("+ label smoothing 0.1", {"label_smoothing": 0.1}),
    "ema": ("+ averaged (EMA) weights, momentum 0.99", {"ema": True}),
    "strong": ("+ stronger augmentation (random-resized crop, translation, grayscale, colour)", {"augment": "strong"}),
    "crop": ("+ crop augmentation (random-resized crop, aspect jitter, flip, ±10° rotation, colour; one resampling)", {"augment": "crop"}),
    "wide": ("+ wider network (stem 32; blocks 48, 96, 160, 224)", {"model": WIDE}),
    "extra": ("+ petimages-extra (8,946 more training photos)", {"extra": True}),
    "progressive": ("+ progressive resizing (most epochs at 3/4 size, the last quarter at full size)", {"progressive": True}),
}


def register_wide() -> None:
    """The `wide` variant's network as a preset, so that it trains through catdog.training like the others."""
    from catdog import models
    from catdog.models import presets

    if WIDE not in models.PRESETS:
        spec = models.get_preset("compact")
        build = lambda size, augment="standard": presets.build_compact(size, augment, (32, 48, 96, 160, 224))  # noqa: E731
        models.preset(WIDE, spec.image_size, "compact, wider (ablation only)", learning_rate=spec.learning_rate,
                      lr_schedule="cosine", augment="standard", cpu_bf16=spec.cpu_bf16, fuse_batch_norm_in=spec.fuse_batch_norm_in)(build)


def variant_config(name: str, folders: list[str], args):
    """The `TrainConfig` of one variant: the baseline with the variant's one change."""
    from catdog.training import TrainConfig

    change = dict(VARIANTS[name][1])
    extra, progressive = change.pop("extra", False), change.pop("progressive", False)
    return TrainConfig(
        data=folders + ([str(SHARED / "petimages-extra")] if extra else []),
        val_data=str(SHARED / "catdog-small" / "validation"),
        **{"model": "compact", "augment": "standard", **change},
        epochs=args.epochs, image_size=args.size, batch_size=32, learning_rate=2e-3, lr_schedule="cosine",
        precision="float32", seed=args.seed, calibration_split=0.0, checkpoint=False, cache="memory",
        progressive_size=(args.size * 3 // 4) // 8 * 8 if progressive else None,
    )


def run_variant(name: str, folders: list[str], args, runs_dir: Path) -> dict:
    """Train one variant through catdog.training and score its saved model on the validation photos."""
    from catdog.predict import Predictor
    from catdog.training import train

    cfg = variant_config(name, folders, args)
    t0 = time.time()
    run = train(cfg, runs_dir=runs_dir, run_id=name, verbose=0, stream=io.StringIO(), lock=False, handle_signals=False)
    seconds = time.time() - t0
    if run.status().get("state") != "finished":
        raise RuntimeError(f"variant {name!r} did not finish: {run.status()}")
    predictor = Predictor.load(run.path, backend="tensorflow", precision="float32")
    val_files, _ = data.load_labelled_folder(SHARED / "catdog-small" / "validation", ["cat", "dog"])
    val = data.decode_images(val_files, args.size, cache="memory")
    probs = _raw(predictor, val.images)
    flipped = _raw(predictor, np.ascontiguousarray(np.asarray(val.images)[:, :, ::-1]))
    row = {"variant": name, "what": VARIANTS[name][0], "epochs": args.epochs, "size": args.size,
           "train_images": run.config()["n_train"], "train_seconds": round(seconds)}
    row.update(_scores(val.labels, probs))
    row.update({f"tta_{k}": v for k, v in _scores(val.labels, (probs + flipped) / 2).items()})
    return row


def _raw(predictor, images: np.ndarray) -> np.ndarray:
    return np.concatenate([predictor.raw_probs(images[s : s + 64]) for s in range(0, len(images), 64)])


def _scores(labels: np.ndarray, probs: np.ndarray) -> dict:
    return {
        "accuracy": round(float(np.mean((probs >= 0.5) == (labels == 1))), 4),
        "log_loss": round(log_loss(labels, probs), 4),
        "ece": round(expected_calibration_error(labels, probs), 4),
    }


def training_folders(photos: int | None, tmp: Path) -> list[str]:
    """catdog-small/train, or `photos` of its photos (half per class) copied aside for a quick run."""
    source = SHARED / "catdog-small" / "train"
    if not photos:
        return [str(source)]
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from augment_check import subset_folder

    return [str(subset_folder(source, photos, tmp / "train"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated: " + ", ".join(VARIANTS))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--photos", type=int, default=None, help="train on only this many photos of catdog-small/train (a quick check)")
    parser.add_argument("--out", help="append each result as a JSON line to this file")
    args = parser.parse_args(argv)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    if not (SHARED / "catdog-small" / "validation").is_dir():
        print(f"skipped: {SHARED / 'catdog-small'} is missing", file=sys.stderr)
        return 0
    register_wide()
    print(f"CPU: {cpu_model()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="catdog-ablation-") as tmp:
        folders = training_folders(args.photos, Path(tmp))
        for name in names:
            row = run_variant(name, folders, args, Path(tmp) / "runs")
            row.update(cpu=cpu_model(), source="benchmarks/recipe_ablation.py through catdog.training",
                       load_average=round(os.getloadavg()[0], 1), photos_limit=args.photos)
            print(json.dumps(row), flush=True)
            if args.out:
                with open(args.out, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
