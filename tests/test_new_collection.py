"""The warm-start proxy collection (benchmarks/new_collection.py): seeded, and really different photos."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from benchmarks.new_collection import build, transform
from tests.fixtures import make_class_folders


def test_each_photo_is_transformed_the_same_way_every_time_and_differs_from_the_original():
    original = Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8))
    first, again, other = transform(original, 3), transform(original, 3), transform(original, 4)
    assert first == again and first != other
    copy = Image.open(io.BytesIO(first))
    assert copy.format == "JPEG" and copy.size != original.size  # a close crop at another aspect ratio


def test_build_writes_every_photo_once_per_class_folder_and_keeps_a_complete_copy(tmp_path):
    source = make_class_folders(tmp_path / "photos", n=3, size=(64, 48))
    out = build(source, tmp_path / "proxy")
    assert sorted(p.parent.name for p in out.rglob("*.jpg")) == ["cats"] * 3 + ["dogs"] * 3
    stamp = (out / "cats" / "cat000.jpg").stat().st_mtime_ns
    build(source, tmp_path / "proxy")
    assert (out / "cats" / "cat000.jpg").stat().st_mtime_ns == stamp  # complete: not written again
