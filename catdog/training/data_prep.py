"""The training's photos: find, pool, split (train, validation, calibration) and decode them."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from catdog import data
from catdog.distribute import worker_shard
from catdog.errors import DatasetError
from catdog.inspect import content_digest


@dataclass
class PreparedData:
    """Decoded training, validation and calibration images, and where they came from."""

    class_names: list[str]
    kind: str
    folders: list[dict]
    train: data.DecodedSet
    validation: data.DecodedSet
    calibration: data.DecodedSet | None

    def record(self) -> dict:
        """What config.json says about the data: classes, layout, counts and skipped files."""
        return data_record(self)


def data_record(prepared) -> dict:
    """config.json's record of a training's photos (`PreparedData`, or a frozen training's `FeatureData`)."""
    sets = (prepared.train, prepared.validation, prepared.calibration)
    return {
        "class_names": prepared.class_names,
        "layout": prepared.kind,
        "data_folders": prepared.folders,
        "n_train": len(prepared.train),
        "n_validation": len(prepared.validation),
        "n_calibration": len(prepared.calibration) if prepared.calibration is not None else 0,
        "skipped": [[str(p), r] for d in sets if d is not None for p, r in d.skipped],
    }


def find_layouts(settings) -> list[data.DatasetLayout]:
    """The training folders' layouts, the validation folder checked, and no photo in two places.

    Run before a run folder exists, so a bad folder leaves nothing behind.

    Raises:
        DatasetError: a folder is missing or unusable, the folders' classes
            differ, or a photo would be used twice (`refuse_overlaps`).
    """
    layouts = data.discover_all(settings.data_folders())
    validation = data.load_labelled_folder(settings.val_data, layouts[0].class_names)[0] if settings.val_data else None
    refuse_overlaps(layouts, validation)
    return layouts


def refuse_overlaps(layouts: Sequence[data.DatasetLayout], validation: data.ImageSet | None = None) -> None:
    """Refuse photos that the training folders share (a folder given twice, or one inside another), and a
    validation folder whose photos are training photos: both would validate and calibrate on photos the model trained on.

    Raises:
        DatasetError: naming the folders and what to do.
    """
    owner: dict[Path, Path] = {}
    real = _real_paths()
    for layout in layouts:
        for path in [*layout.train.paths, *(layout.validation.paths if layout.validation is not None else [])]:
            key = real(path)
            if key in owner:
                twice = "is given twice" if owner[key] == layout.root else f"overlaps {str(owner[key])!r}"
                raise DatasetError(
                    f"training folder {str(layout.root)!r} {twice} (both hold {str(key)!r}): its photos would be trained on twice "
                    "and copies would land in validation and calibration; give each folder once"
                )
            owner[key] = layout.root
    trained = {real(p) for layout in layouts for p in layout.train.paths}
    shared = [p for p in (validation.paths if validation is not None else []) if real(p) in trained]
    if shared:
        raise DatasetError(
            f"{len(shared)} of the {len(validation.paths)} validation photos are also training photos (e.g. {str(shared[0])!r}): "
            "validation would measure photos the model trained on; give a separate validation folder, or --val-split"
        )


def _real_paths():
    """`Path.resolve` for the files of a dataset, resolving each folder once: a file that is no link resolves
    to its resolved folder plus its name (8,000 photos in a few folders: a stat each, not a walk up the path each)."""
    folders: dict[Path, Path] = {}

    def real(path) -> Path:
        path = Path(path)
        if path.is_symlink():
            return path.resolve()
        parent = path.parent
        if parent not in folders:
            folders[parent] = parent.resolve()
        return folders[parent] / path.name

    return real


def prepare_data(settings, log=print, layouts: Sequence[data.DatasetLayout] | None = None) -> PreparedData:
    """Discover, pool, split and decode the training, validation and calibration images.

    The calibration images are a seeded, stratified share (`calibration_split`)
    of the *training* photos, held out from training; validation is never used to calibrate.

    Args:
        settings: the run's `Settings` (data, val_data, val_split, calibration_split, seed, image_size, cache, strategy).
        log: where messages go.
        layouts: the folders' layouts when already found (`find_layouts`).
    """
    layouts = list(layouts or find_layouts(settings))
    splits = split_photos(settings, layouts, log)
    decoded = {name: _decode(settings, name, images, log) for name, images in splits.items() if images is not None}
    for name in ("train", "validation"):
        check_readable(decoded[name], name, settings.data_folders())
    names, kind = layouts[0].class_names, layouts_kind(layouts)
    return PreparedData(names, kind, folders_record(layouts), decoded["train"], decoded["validation"], decoded.get("calibration"))


def split_photos(settings, layouts: Sequence[data.DatasetLayout], log=print) -> dict[str, data.ImageSet | None]:
    """{"train", "validation", "calibration"}: the files of each split (calibration None when none is held out), said in the log."""
    names = layouts[0].class_names
    train_set, val_set = _train_and_validation(settings, list(layouts), log)
    train_set, calib_set = _hold_out_calibration(settings, train_set, log)
    for layout in layouts:
        log(f"Dataset {layout.root} ({layout.kind} layout): classes {layout.class_names}, {len(layout.train)} training files")
    splits = {"train": train_set, "validation": val_set, "calibration": calib_set}
    for name, images in splits.items():
        if images is not None:
            log(f"  {name}{' (held out from train)' if name == 'calibration' else ''}: {len(images)} files {images.counts(names)}")
    warn_duplicates(splits, log)
    return splits


def layouts_kind(layouts: Sequence[data.DatasetLayout]) -> str:
    """config.json's `layout`: the one folder's kind, or the kinds joined with '+'."""
    return layouts[0].kind if len(layouts) == 1 else "+".join(layout.kind for layout in layouts)


def _pool(sets: Sequence[data.ImageSet]) -> data.ImageSet:
    return data.ImageSet([p for s in sets for p in s.paths], [label for s in sets for label in s.labels])


def _train_and_validation(settings, layouts: list[data.DatasetLayout], log) -> tuple[data.ImageSet, data.ImageSet]:
    """The pooled training photos and the validation photos: a folder, a split, the dataset's own, or 20%."""
    train_set = _pool([layout.train for layout in layouts])
    own_validation = [layout.validation for layout in layouts if layout.validation is not None]
    if settings.val_data:
        val_set, _ = data.load_labelled_folder(settings.val_data, layouts[0].class_names)
        return train_set, val_set
    if settings.val_split:
        return data.split(train_set, settings.val_split, settings.seed)
    if own_validation:
        return train_set, _pool(own_validation)
    log("No validation folder given: holding out 20% of the training images (--val-split 0.2).")
    return data.split(train_set, 0.2, settings.seed)


def _hold_out_calibration(settings, train_set: data.ImageSet, log) -> tuple[data.ImageSet, data.ImageSet | None]:
    if not settings.calibration_split:
        return train_set, None
    try:
        return data.split(train_set, settings.calibration_split, settings.seed + 1)
    except DatasetError:
        log(f"Too few training images to hold out {settings.calibration_split:.0%} for calibration: the model stays uncalibrated.")
        return train_set, None


def _decode(settings, name: str, images: data.ImageSet, log) -> data.DecodedSet:
    t0 = time.time()
    if name == "train":  # multiworker: each worker decodes only its own share
        images = data.shard(images, *worker_shard(settings.strategy))
    decoded = data.decode_images(images, settings.image_size, cache=settings.cache)
    size = settings.image_size
    log(f"  decoded {len(decoded)} {name} images at {size}x{size} in {time.time() - t0:.1f}s")
    for path, reason in decoded.skipped:
        log(f"  skipped {path}: {reason}")
    return decoded


def check_readable(decoded, name: str, folders: list[str]) -> None:
    if not len(decoded):
        raise DatasetError(
            f"none of the {len(decoded.skipped)} {name} images could be read; check them with `catdog data inspect {' '.join(folders)}`"
        )
    if len(set(decoded.labels.tolist())) < 2:
        raise DatasetError(f"after skipping unreadable files, the {name} set has only one class; add images of both classes")


def folders_record(layouts: list[data.DatasetLayout]) -> list[dict]:
    names = layouts[0].class_names
    return [
        {
            "path": str(layout.root),
            "layout": layout.kind,
            "train": layout.train.counts(names),
            "validation": layout.validation.counts(names) if layout.validation is not None else None,
        }
        for layout in layouts
    ]


def duplicates_across_splits(splits: dict[str, data.ImageSet | None]) -> list[tuple[str, str, str, str]]:
    """(split, file, other split, other file) for each photo whose exact bytes are also in another split.

    Only files whose sizes match one in another split are read and hashed,
    so a dataset without duplicates costs one `stat` per file.
    """
    by_size: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for name, images in splits.items():
        for path in images.paths if images is not None else []:
            try:
                by_size[Path(path).stat().st_size].append((name, str(path)))
            except OSError:
                continue  # unreadable: decoding reports it
    found = []
    for group in by_size.values():
        if len({name for name, _ in group}) < 2:
            continue
        first: dict[str, tuple[str, str]] = {}
        for name, path in group:
            digest = _digest(path)
            if digest is None:
                continue
            if digest in first and first[digest][0] != name:
                found.append((*first[digest], name, path))
            first.setdefault(digest, (name, path))
    return found


def _digest(path: str) -> str | None:
    try:
        return content_digest(Path(path).read_bytes())
    except OSError:
        return None


def warn_duplicates(splits: dict[str, data.ImageSet | None], log) -> None:
    """Say so, before training, when the same photo (same bytes, another file) is in two splits."""
    found = duplicates_across_splits(splits)
    if not found:
        return
    split, path, other, other_path = found[0]
    log(
        f"Warning: {len(found)} photo(s) are in two splits with the same bytes under other names (e.g. {split} {path!r} = "
        f"{other} {other_path!r}): validation and calibration figures will look better than they are; "
        "find and quarantine them with `catdog data inspect`"
    )
