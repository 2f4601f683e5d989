"""A "new collection" proxy: transformed copies of a labelled folder that look like another camera's photos.

Every photo gets the same kind of change a user's own collection brings (their phone,
their pets, their framing): a close crop at another aspect ratio, a warm colour cast
(a quarter of them grayscale instead), blur, and strong JPEG artefacts. Each photo's
draw is seeded by its index, so the proxy is the same on every machine.

    python -m benchmarks.new_collection --data ../shared/data/catdog-small/validation --out /tmp/proxy

Writes OUT/cats/ and OUT/dogs/ (the class folders' names are kept).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from catdog import data
from catdog.preprocess import open_image, to_rgb

SEED = 18
CAST = (1.18, 1.0, 0.72)  # warm, yellowish: one camera's white balance for the whole collection


def _close_crop(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A close crop (40-65% of the area) at another aspect ratio (3:5 to 5:3), near the centre."""
    w, h = img.size
    area = rng.uniform(0.40, 0.65) * w * h
    aspect = float(np.exp(rng.uniform(np.log(0.6), np.log(1 / 0.6))))
    cw, ch = min(w, int(round(np.sqrt(area * aspect)))), min(h, int(round(np.sqrt(area / aspect))))
    left = int(np.clip((w - cw) / 2 + rng.normal(0, 0.12) * w, 0, w - cw))
    top = int(np.clip((h - ch) / 2 + rng.normal(0, 0.12) * h, 0, h - ch))
    return img.crop((left, top, left + cw, top + ch))


def _colour(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    if rng.random() < 0.25:
        return ImageOps.grayscale(img).convert("RGB")
    pixels = np.asarray(img, np.float32) * np.asarray(CAST, np.float32) + 12.0  # the cast, and lifted blacks
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def transform(img: Image.Image, index: int) -> bytes:
    """One photo of the proxy collection, as JPEG bytes."""
    rng = np.random.default_rng([SEED, index])
    img = _colour(_close_crop(to_rgb(img), rng), rng)
    img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.8, 2.0)) * max(img.size) / 300))
    return _jpeg(img, int(rng.integers(8, 25)))


def build(source: str | Path, out: str | Path, class_names=("cat", "dog")) -> Path:
    """Write the transformed copy of `source` (class folders) under `out`; an existing complete copy is kept."""
    images, _ = data.load_labelled_folder(str(source), list(class_names))
    out = Path(out)
    done = out / ".complete"
    if done.exists() and done.read_text() == str(len(images)):
        return out
    for i, path in enumerate(images.paths):
        target = out / Path(path).parent.name / (Path(path).stem + ".jpg")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(transform(open_image(path), i))
    done.write_text(str(len(images)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="labelled folder (cats/ + dogs/)")
    parser.add_argument("--out", required=True, help="where to write the copies")
    args = parser.parse_args(argv)
    print(build(args.data, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
