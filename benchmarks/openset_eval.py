"""Measure "not a cat or dog" methods on a model's features; print a table and write a results file.

    python benchmarks/openset_eval.py [--model assets/model] [--out docs/openset-results.json]

Fit sets come from the training side only: features of training photos (the
class means and covariances) and held-out training photos (standardisation and
the threshold, flagging at most 2% of them). Reported on: catdog-small/validation
(pets: the share wrongly flagged), not-pets/clothing and not-pets/objects (the
share flagged), and "unseen": photos of kinds no part of any method saw (people,
a coffee cup, a rocket, space, a street, flowers, text, drawings and synthetic
screens), from the sample images that scikit-image, scikit-learn and Matplotlib
ship (`pip install scikit-image scikit-learn`; left out when missing).

Methods: the existing "Not sure" line (calibrated confidence < 0.75), max-logit
(|logit| small), the Mahalanobis distance at each depth and its mean over depths
(catdog.openset without negatives), and catdog's pet-or-not head (with
negatives), fitted with one not-pets kind and tested on the other (clothing ->
objects, objects -> clothing) and on "unseen"; every threshold is set on held-out
training pets (2%). A figure on the kind a method was fitted with is left out (nan).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from catdog import data, openset  # noqa: E402
from catdog.calibration import apply_temperature  # noqa: E402
from catdog.predict import calibration_of, resolve_model  # noqa: E402
from catdog.preprocess import load_array  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
FLAG_RATE = openset.DEFAULT_FLAG_RATE


def machine() -> str:
    model = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    name = next((line.split(":", 1)[1].strip() for line in model.splitlines() if line.startswith("Model name")), platform.processor())
    family = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("cpu family")), "?")
    return f"{name}, cpu family {family}, {os.cpu_count()} cores"


def folder_images(folder: Path, limit: int | None, seed: int) -> data.ImageSet:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if limit and len(files) > limit:
        rng = np.random.default_rng(seed)
        files = sorted(rng.choice(files, limit, replace=False).tolist())
    return data.ImageSet([Path(p) for p in files], [0] * len(files))


def unseen_sources(tmp: Path) -> list[Path]:
    """Photos and pictures of kinds that neither the model nor the check saw (no cats or dogs)."""
    found: list[Path] = []
    try:
        import skimage

        skdir = Path(skimage.__file__).parent / "data"
        for name in ("astronaut.png", "camera.png", "coffee.png", "rocket.jpg", "hubble_deep_field.jpg", "motorcycle_left.png",
                     "brick.png", "grass.png", "gravel.png", "coins.png", "moon.png", "page.png", "text.png", "retina.jpg",
                     "ihc.png", "cell.png", "clock_motion.png", "logo.png", "color.png", "immunohistochemistry.png"):
            if (skdir / name).exists():
                found.append(skdir / name)
    except ImportError:
        pass
    try:
        import sklearn.datasets

        found += sorted((Path(sklearn.datasets.__file__).parent / "images").glob("*.jpg"))
    except ImportError:
        pass
    try:
        import matplotlib

        hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        if hopper.exists():
            found.append(hopper)
    except ImportError:
        pass
    return found + synthetic_pictures(tmp)


def synthetic_pictures(tmp: Path) -> list[Path]:
    """Screens, drawings, text and plain colours drawn with Pillow (seeded)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(7)
    out = []
    for i in range(12):
        img = Image.new("RGB", (320, 240), tuple(int(v) for v in rng.integers(0, 255, 3)))
        draw = ImageDraw.Draw(img)
        kind = i % 4
        if kind == 0:  # a screenshot: bars and lines of text
            draw.rectangle((0, 0, 320, 24), fill=(40, 40, 60))
            for y in range(40, 230, 16):
                draw.text((10, y), "lorem ipsum dolor sit amet " * 2, fill=(0, 0, 0))
        elif kind == 1:  # a drawing: shapes
            for _ in range(8):
                box = sorted(rng.integers(0, 320, 2).tolist()), sorted(rng.integers(0, 240, 2).tolist())
                draw.ellipse((box[0][0], box[1][0], box[0][1], box[1][1]), outline=tuple(int(v) for v in rng.integers(0, 255, 3)), width=4)
        elif kind == 2:  # a gradient sky
            arr = np.linspace(0, 1, 240)[:, None, None] * rng.integers(60, 255, 3)[None, None, :]
            img = Image.fromarray(np.broadcast_to(arr, (240, 320, 3)).astype(np.uint8))
        else:  # noise
            img = Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
        path = tmp / f"synthetic-{i}.png"
        img.save(path)
        out.append(path)
    return out


def decode_paths(paths: list[Path], size: int) -> np.ndarray:
    return np.stack([load_array(p, size) for p in paths])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "assets" / "model"))
    parser.add_argument("--fit-photos", type=int, default=3000, help="training photos for the class means (a seeded sample)")
    parser.add_argument("--held-out", type=int, default=1000, help="held-out training photos for the threshold")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    if not (SHARED / "catdog-small").exists():
        print(f"skipped: {SHARED / 'catdog-small'} is missing")
        return 0
    from catdog.models import load_keras

    t0 = time.time()
    model_file, settings = resolve_model(args.model)
    model = load_keras(model_file, compile=False)  # registers catdog's own layers (RandomCropAugment) first
    size = int(model.input_shape[1])
    temperature, below = calibration_of(settings)
    layers = openset.feature_layer_names(model)
    print(f"# {machine()}\n# model {model_file} ({size} px); feature layers {layers}")

    # Training side: photos from the model's own training folders; the held-out ones are its calibration/validation hold-outs.
    train_pool = data.ImageSet([], [])
    for folder in (SHARED / "catdog-small" / "train", SHARED / "petimages-extra"):
        s, _ = data.load_labelled_folder(folder, ["cat", "dog"])
        train_pool.paths += s.paths
        train_pool.labels += s.labels
    rest, held = data.split(train_pool, args.held_out / len(train_pool), seed=11)
    _, fit_set = data.split(rest, args.fit_photos / len(rest), seed=12)
    sets = {"fit": fit_set, "held_out": held}
    val, _ = data.load_labelled_folder(SHARED / "catdog-small" / "validation", ["cat", "dog"])
    sets["validation"] = val
    for kind in ("clothing", "objects"):
        sets[kind] = folder_images(SHARED / "not-pets" / kind, None, 0)
    feats, probs, labels = {}, {}, {}
    for name, images in sets.items():
        dec = data.decode_images(images, size, cache="memory")
        probs[name], feats[name] = openset.extract(model, dec.images, layers)
        labels[name] = dec.labels
        print(f"# {name}: {len(dec)} photos")
    with tempfile.TemporaryDirectory() as tmp:
        paths = unseen_sources(Path(tmp))
        arrays = decode_paths(paths, size)
    probs["unseen"], feats["unseen"] = openset.extract(model, arrays, layers)
    print(f"# unseen: {len(paths)} pictures ({', '.join(p.stem for p in paths[:12])}, ...)")

    results = evaluate_methods(feats, probs, labels, layers, temperature, below)
    print(f"\n{'method':58s} {'validation':>10s} {'clothing':>9s} {'objects':>8s} {'unseen':>7s}")
    for row in results:
        print(f"{row['method']:58s} {row['validation']:10.3f} {row['clothing']:9.3f} {row['objects']:8.3f} {row['unseen']:7.3f}")
    print(f"\n# {time.time() - t0:.0f} s")
    if args.out:
        record = {"machine": machine(), "model": str(model_file), "layers": layers, "flag_rate": FLAG_RATE,
                  "unseen": [p.name for p in paths], "results": results}
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    return 0


def _row(method: str, flagged: dict) -> dict:
    return {"method": method, **{k: round(float(np.mean(v)), 4) for k, v in flagged.items()}}


REPORTED = ("validation", "clothing", "objects", "unseen")


def evaluate_methods(feats, probs, labels, layers, temperature, below) -> list[dict]:
    rows = []
    conf = {k: np.maximum(apply_temperature(p, temperature), 1 - apply_temperature(p, temperature)) for k, p in probs.items()}
    rows.append(_row("'Not sure' line (calibrated confidence < 0.75)", {k: conf[k] < below for k in REPORTED}))
    logit = {k: np.abs(np.log(np.clip(p, 1e-7, 1 - 1e-7) / np.clip(1 - p, 1e-7, 1))) for k, p in probs.items()}
    t = np.quantile(-logit["held_out"], 1 - FLAG_RATE)
    rows.append(_row("max-logit (|logit| small), 2% of held-out pets", {k: -logit[k] > t for k in REPORTED}))
    for i, name in enumerate(layers):
        check = openset.fit([feats["fit"][i]], labels["fit"], [feats["held_out"][i]], [name], FLAG_RATE)
        rows.append(_row(f"distance, {name} only", {k: check.is_not_pet(check.score([feats[k][i]])) for k in REPORTED}))
    check = openset.fit(feats["fit"], labels["fit"], feats["held_out"], layers, FLAG_RATE)
    rows.append(_row("distance, mean over depths (catdog, no negatives)", {k: check.is_not_pet(check.score(feats[k])) for k in REPORTED}))
    for negs in (("clothing",), ("objects",), ("clothing", "objects")):
        pooled = [np.concatenate([feats[n][i] for n in negs]) for i in range(len(layers))]
        check = openset.fit(feats["fit"], labels["fit"], feats["held_out"], layers, FLAG_RATE, pooled)
        flagged = {k: check.is_not_pet(check.score(feats[k])) for k in REPORTED}
        for n in negs:
            flagged[n] = np.full(1, np.nan)  # fitted on them: not a fair figure
        rows.append(_row(f"pet-or-not head (catdog), fitted with {' + '.join(negs)}", flagged))
    return rows


def _affine(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return x @ w[:-1] + w[-1]


if __name__ == "__main__":
    raise SystemExit(main())
