"""Which fine-tuning recipe makes a warm start help on a "new collection"?

    python -m benchmarks.warm_start_recipe --data ../shared/data/catdog-small/validation \
        [--recipes defaults,lr1e-3,...] [--init-from bundled] [--out docs/warm_start_recipe.json]

Builds the proxy collection (`benchmarks.new_collection`: close crops at other aspect
ratios, a colour cast or grayscale, blur, JPEG artefacts) from DATA, draws 300 of its
photos (150 per class, seeded) as the user's training folder, and keeps the rest as the
photos the user will see next. For each recipe it trains with `catdog.training.train`
from the starting model, exactly as `catdog train --data FOLDER --init-from bundled`
would (its 20% validation and 10% calibration splits included), then scores the saved,
calibrated model on the rest. "no training" is the starting model itself.

Prints a Markdown table and the CPU, and writes every figure to --out (JSON). Rerun it
after the bundled model changes: nothing here is tied to one model.
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

import numpy as np

from benchmarks.new_collection import build as build_proxy
from catdog import data
from catdog.calibration import apply_temperature, expected_calibration_error, log_loss
from catdog.hardware import cpu_model

N_TRAIN = 300
SPLIT_SEED = 7
# name -> (what it changes, TrainConfig settings). Every recipe trains at most 10 epochs.
RECIPES: dict[str, tuple[str, dict]] = {
    "old-defaults": ("the warm start before this change: lr 2e-4 (a tenth of the preset's), cosine, 10 epochs", {
        "epochs": 10, "learning_rate": 2e-4}),
    "bn-only": ("adapt the BatchNorm statistics only (learning rate 1e-9), 3 epochs", {"epochs": 3, "learning_rate": 1e-9}),
    "lr1e-3": ("lr 1e-3, cosine, 10 epochs", {"epochs": 10, "learning_rate": 1e-3}),
    "b16": ("batch 16 (twice the steps), lr 5e-4, cosine, 10 epochs", {"epochs": 10, "batch_size": 16, "learning_rate": 5e-4}),
    "b16-strong": ("batch 16, lr 5e-4, cosine, strong augmentation, 10 epochs", {
        "epochs": 10, "batch_size": 16, "learning_rate": 5e-4, "augment": "strong"}),
    "b16-freeze-early": ("batch 16, lr 5e-4, cosine, stem and the first two blocks frozen, 10 epochs", {
        "epochs": 10, "batch_size": 16, "learning_rate": 5e-4, "_freeze": "early"}),
    "b16-freeze-bn": ("batch 16, lr 5e-4, cosine, BatchNorm statistics frozen (the starting model's), 10 epochs", {
        "epochs": 10, "batch_size": 16, "learning_rate": 5e-4, "_freeze": "bn"}),
    "defaults": ("the warm-start defaults now (no setting given): lr 2e-4, cosine, at most 10 epochs, early stopping "
                 "(patience 3), temperature pulled toward the start", {}),
}
EARLY_LAYERS = ("stem_", "block1_", "block2_")


def freeze_callback(what: str):
    """A callback that freezes layers before the first step (a benchmark-only knob: whole-run freezing)."""
    import keras

    class Freeze(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            from catdog.models.layers import iter_layers

            for layer in iter_layers(self.model):
                bn = isinstance(layer, keras.layers.BatchNormalization)
                if (what == "bn" and bn) or (what == "early" and layer.name.startswith(EARLY_LAYERS)):
                    layer.trainable = False  # a frozen BatchNorm also runs in inference mode

    return Freeze()


def split_collection(proxy: Path, work: Path, names: list[str]) -> tuple[Path, data.ImageSet]:
    """Copy N_TRAIN photos of the proxy (half per class) to WORK/train; return it and the rest."""
    images, _ = data.load_labelled_folder(str(proxy), names)
    share = N_TRAIN / len(images)
    rest, chosen = data.split(images, share, SPLIT_SEED)
    folder = work / "train"
    if folder.exists():
        shutil.rmtree(folder)
    for path in chosen.paths:
        target = folder / Path(path).parent.name / Path(path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return folder, rest


def score(model: str | os.PathLike | None, arrays: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, ECE and log loss of a saved model (its own calibration applied) on decoded photos."""
    from catdog.predict import Predictor

    predictor = Predictor.load(model, backend="tensorflow")
    raw = np.concatenate([predictor.raw_probs(arrays[s : s + 128]) for s in range(0, len(arrays), 128)])
    probs = apply_temperature(raw, predictor.temperature)
    return {
        "accuracy": round(float(np.mean((probs >= predictor.threshold) == (labels == 1))), 4),
        "ece": round(expected_calibration_error(labels, probs), 4),
        "log_loss": round(log_loss(labels, probs), 4),
        "ece_uncalibrated": round(expected_calibration_error(labels, raw), 4),
        "temperature": round(predictor.temperature, 4),
    }


def run_recipe(name: str, folder: Path, work: Path, init_from: str, seed: int, arrays, labels) -> dict:
    from catdog.training import TrainConfig, train

    settings = dict(RECIPES[name][1])
    freeze = settings.pop("_freeze", None)
    cfg = TrainConfig(data=str(folder), init_from=init_from, seed=seed, **settings)
    callbacks = [freeze_callback(freeze)] if freeze else []
    t0 = time.time()
    with open(work / f"{name}-{seed}.log", "w") as log:
        run = train(cfg, runs_dir=work / "runs", run_id=f"{name}-{seed}", callbacks=callbacks, verbose=0, stream=log,
                    lock=False, handle_signals=False)
    seconds = time.time() - t0
    record = run.config()
    rows = run.metrics()
    result = score(run.path, arrays, labels)
    calibration = record.get("calibration") or {}
    result.update(
        recipe=name, seed=seed, seconds=round(seconds, 1), epochs_run=len(rows),
        learning_rate=record.get("learning_rate"), lr_schedule=record.get("lr_schedule"), augment=record.get("augment"),
        early_stopping=record.get("early_stopping"), epochs=record.get("epochs"),
        val_before=(record.get("before") or {}).get("val_accuracy"),
        val_after=run.model_val_accuracy(),  # the saved model's (the lowest-loss epoch's with early stopping)
        calibration_method=calibration.get("method"),
        split=f"{record.get('n_train')} to train · {record.get('n_validation')} to validate · {record.get('n_calibration')} to calibrate",
    )
    return result


def merged(out: str | None, baseline: dict, results: list[dict]) -> list[dict]:
    """`results` after the earlier ones in `out` for other recipes or seeds, when they had the same baseline (starting model)."""
    earlier = json.loads(Path(out).read_text()) if out and Path(out).exists() else {}
    if earlier.get("no_training") != baseline:
        return results  # another starting model or proxy: the old figures no longer compare
    fresh = {(r["recipe"], r["seed"]) for r in results}
    return [r for r in earlier.get("recipes", []) if (r["recipe"], r["seed"]) not in fresh] + results


def table(baseline: dict, results: list[dict]) -> str:
    lines = ["| recipe | what it changes | epochs run | accuracy on the rest | Δ vs no training | ECE | log loss | T (how) | time |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines.append(f"| no training | the starting model as it is | 0 | {baseline['accuracy']:.4f} | +0.0 | {baseline['ece']:.4f} | "
                 f"{baseline['log_loss']:.4f} | {baseline['temperature']:.3f} (its own) | – |")
    for r in results:
        delta = 100 * (r["accuracy"] - baseline["accuracy"])
        how = (r.get("calibration_method") or "").split("(")[0].strip()
        what = RECIPES.get(r["recipe"], ("?",))[0]
        lines.append(f"| `{r['recipe']}` (seed {r['seed']}) | {what} | {r['epochs_run']} | {r['accuracy']:.4f} | "
                     f"{delta:+.1f} | {r['ece']:.4f} | {r['log_loss']:.4f} | {r['temperature']:.3f} ({how}) | {r['seconds']:.0f} s |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="labelled folder to build the proxy from (cats/ + dogs/)")
    parser.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated, from {', '.join(RECIPES)}")
    parser.add_argument("--seeds", default="1337", help="comma-separated training seeds")
    parser.add_argument("--init-from", default="bundled")
    parser.add_argument("--work", default=None, help="working folder (default: a temporary one); the proxy is cached there")
    parser.add_argument("--out", default=None, help="write the results here (JSON); results already there for other recipes are kept")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.data):
        print(f"skipped: {args.data} is not a folder", file=sys.stderr)
        return 0
    names = [n for n in args.recipes.split(",") if n]
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}; choose from {list(RECIPES)}")
    from catdog.predict import Predictor, resolve_model
    from catdog.training import resolve_init_from

    work = Path(args.work or tempfile.mkdtemp(prefix="catdog-recipe-"))
    work.mkdir(parents=True, exist_ok=True)
    start_file = resolve_init_from(args.init_from)
    _, settings = resolve_model(start_file)
    class_names = list(settings.get("class_names") or ["cat", "dog"])
    proxy = build_proxy(args.data, work / "proxy", class_names)
    folder, rest = split_collection(proxy, work, class_names)
    size = int(Predictor.load(start_file, backend="tensorflow").image_size)
    decoded = data.decode_images(rest, size, cache="memory")
    arrays, labels = np.asarray(decoded.images), np.asarray(decoded.labels)
    print(f"CPU: {cpu_model()} · {os.cpu_count()} cores · starting model {start_file}")
    print(f"proxy of {args.data}: {N_TRAIN} photos to train on ({folder}), {len(labels)} to measure on", flush=True)
    baseline = score(start_file, arrays, labels)
    print(f"no training: accuracy {baseline['accuracy']:.4f}  ECE {baseline['ece']:.4f}  log loss {baseline['log_loss']:.4f}", flush=True)
    results = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for name in names:
            result = run_recipe(name, folder, work, args.init_from, seed, arrays, labels)
            results.append(result)
            print(json.dumps(result), flush=True)
    results = merged(args.out, baseline, results)
    report = {"cpu": cpu_model(), "cores": os.cpu_count(), "starting_model": str(start_file), "data": str(args.data),
              "n_train": N_TRAIN, "n_rest": int(len(labels)), "no_training": baseline, "recipes": results,
              "descriptions": {r["recipe"]: RECIPES[r["recipe"]][0] for r in results if r["recipe"] in RECIPES},
              "written": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    buf = io.StringIO()
    print(table(baseline, results), file=buf)
    print(buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
