"""Find, check, split and load a dataset folder; build the tf.data pipeline.

Layouts accepted (see `discover`):
  * split:  ROOT/train/{cats,dogs} and ROOT/{test,validation,val}/{cats,dogs}
            (Kaggle `salader/dogs-vs-cats`)
  * folders: ROOT/{cats,dogs} (or cat/dog, Cat/Dog as in Microsoft's PetImages)
  * flat:   ROOT/cat.123.jpg, ROOT/dog.45.jpg (the Kaggle competition), also
            under ROOT/train/
Images are decoded once by `catdog.preprocess.load_array`, the same function
prediction uses, and kept as uint8 arrays in memory or in an on-disk cache.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from catdog import config
from catdog.errors import DatasetError, ImageError
from catdog.preprocess import PREPROCESS_VERSION, load_array

TRAIN_DIR_NAMES = ("train", "training", "train_set", "training_set")
VAL_DIR_NAMES = ("validation", "val", "valid", "test", "validation_set", "test_set")
_CLASS_ALIASES = {"cat": 0, "cats": 0, "dog": 1, "dogs": 1}
_FLAT_NAME = re.compile(r"^(cat|dog)s?[._\- ]?\d*.*\.[a-z0-9]+$", re.IGNORECASE)
_IGNORED_NAMES = {"thumbs.db", "desktop.ini"}
CACHE_FORMAT_VERSION = 1
CACHE_MODES = ("auto", "memory", "disk")  # auto: memory when it fits, else disk


@dataclass
class ImageSet:
    """Files with their integer labels (0 = first class name)."""

    paths: list[Path]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self, class_names: Sequence[str]) -> dict[str, int]:
        return {name: self.labels.count(i) for i, name in enumerate(class_names)}


@dataclass
class DatasetLayout:
    """What `discover` found in a folder."""

    root: Path
    kind: str  # "split", "folders" or "flat"
    class_names: list[str]
    train: ImageSet
    validation: ImageSet | None = None


@dataclass
class DecodedSet:
    """Images decoded at the model's size, plus the files that were skipped."""

    images: np.ndarray  # uint8 (n, size, size, 3), in memory or memory-mapped
    labels: np.ndarray  # int32 (n,)
    paths: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    cache_path: Path | None = None

    def __len__(self) -> int:
        return len(self.paths)


def discover(path: str | os.PathLike) -> DatasetLayout:
    """Work out the layout of a dataset folder.

    Raises:
        DatasetError: the path is missing, not a folder, empty, or has only one class.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise DatasetError(f"dataset folder {str(path)!r} does not exist; check the path")
    if not root.is_dir():
        raise DatasetError(f"dataset path {str(path)!r} is not a folder")
    root = root.resolve()
    subdirs = {p.name.lower(): p for p in _visible(root) if p.is_dir()}
    train_dir = next((subdirs[n] for n in TRAIN_DIR_NAMES if n in subdirs), None)
    val_dir = next((subdirs[n] for n in VAL_DIR_NAMES if n in subdirs), None)
    if train_dir is not None:
        train_set, names, kind = _labelled_files(train_dir)
        validation = None
        if val_dir is not None and _has_class_folders(val_dir):
            validation = _files_by_class(val_dir, names)
        return DatasetLayout(root, "split" if validation else kind, names, train_set, validation)
    if val_dir is not None and not _has_class_folders(root) and not _flat_files(root):
        raise DatasetError(
            f"{str(root)!r} has a {val_dir.name!r} folder but no train folder; "
            "pass the folder with the class folders in it"
        )
    train_set, names, kind = _labelled_files(root)
    return DatasetLayout(root, kind, names, train_set)


def discover_all(paths: Sequence[str | os.PathLike]) -> list[DatasetLayout]:
    """`discover` for several folders whose images are pooled; they must share their classes.

    Raises:
        DatasetError: no folder given, a folder is unusable, or the classes differ.
    """
    if not paths:
        raise DatasetError("no dataset folder given; pass at least one --data folder")
    layouts = [discover(p) for p in paths]
    names = layouts[0].class_names
    for layout in layouts[1:]:
        if layout.class_names != names:
            raise DatasetError(
                f"{str(layout.root)!r} has classes {layout.class_names}, but {str(layouts[0].root)!r} has {names}; "
                "every --data folder needs the same class folders"
            )
    return layouts


def load_labelled_folder(path: str | os.PathLike, class_names: Sequence[str] | None = None) -> tuple[ImageSet, list[str]]:
    """All labelled images under a folder, for validation or evaluation.

    With the split layout, this is the validation/test part.
    """
    layout = discover(path)
    images = layout.validation if layout.validation is not None else layout.train
    names = layout.class_names
    if class_names is not None and list(class_names) != names:
        images = _relabel(images, names, list(class_names), layout.root)
        names = list(class_names)
    return images, names


def split(images: ImageSet, val_split: float, seed: int = config.SEED) -> tuple[ImageSet, ImageSet]:
    """Stratified, seeded split into (train, validation)."""
    if not 0.0 < val_split < 1.0:
        raise ValueError(f"val_split must be between 0 and 1, got {val_split!r}")
    rng = np.random.default_rng(seed)
    train_idx: list[int] = []
    val_idx: list[int] = []
    labels = np.asarray(images.labels)
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        rng.shuffle(idx)
        n_val = int(round(len(idx) * val_split))
        if n_val == 0 or n_val == len(idx):
            raise DatasetError(
                f"class {int(label)} has {len(idx)} images, too few for a validation split of {val_split}; "
                "add images or pass --val-data"
            )
        val_idx.extend(idx[:n_val].tolist())
        train_idx.extend(idx[n_val:].tolist())
    pick = lambda ids: ImageSet([images.paths[i] for i in sorted(ids)], [images.labels[i] for i in sorted(ids)])  # noqa: E731
    return pick(train_idx), pick(val_idx)


def split_sizes(class_counts: Sequence[int], val_split: float | None, calibration_split: float = 0.0) -> tuple[int, int, int]:
    """(train, validation, calibration) photo counts that `split` would give, for showing before a training.

    Args:
        class_counts: the training photos of each class.
        val_split: the validation share (None or 0: the dataset's own validation folder).
        calibration_split: the share of the remaining training photos held out to calibrate.
    """
    def held(count: int, share: float | None) -> int:
        n = int(round(count * share)) if share else 0
        return n if 0 < n < count else 0  # `split` refuses the others; the training says so

    val = [held(c, val_split) for c in class_counts]
    calib = [held(c - v, calibration_split) for c, v in zip(class_counts, val)]
    return sum(class_counts) - sum(val) - sum(calib), sum(val), sum(calib)


def shard(images: ImageSet, index: int, count: int) -> ImageSet:
    """Worker `index` of `count`'s share: every count-th file, the same number for every worker.

    Each worker of a multi-worker training decodes only its share. The shares
    are equal (up to count - 1 files are left out) so that every worker runs
    the same number of steps, which the collective ops require.
    """
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"index must be in [0, count) with count >= 1, got index={index!r}, count={count!r}")
    if count == 1:
        return images
    per_worker = len(images) // count
    if per_worker == 0:
        raise DatasetError(f"{len(images)} training images cannot be shared among {count} workers")
    picked = list(range(index, per_worker * count, count))
    return ImageSet([images.paths[i] for i in picked], [images.labels[i] for i in picked])


def decode_images(
    images: ImageSet,
    image_size: int = config.IMAGE_SIZE,
    cache: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> DecodedSet:
    """Decode every file once with the shared preprocessing; skip bad files.

    Args:
        images: the files and labels.
        image_size: the model's input size.
        cache: "auto" (memory when it fits, else disk), "memory", or "disk"
            (a reusable cache under `catdog.config.cache_dir()`).
        progress: called with (done, total) while decoding.
    """
    if cache not in CACHE_MODES:
        raise ValueError(f"cache must be one of {CACHE_MODES}, got {cache!r}")
    if len(images) == 0:
        raise DatasetError("no images to decode")
    key = _cache_key(images, image_size)
    cached = _load_disk_cache(key)
    if cached is not None:
        return cached
    nbytes = len(images) * image_size * image_size * 3
    use_disk = cache == "disk" or (cache == "auto" and nbytes > _memory_budget())
    if use_disk:
        return _decode_to_disk(images, image_size, key, progress)
    array = np.empty((len(images), image_size, image_size, 3), dtype=np.uint8)
    ok, skipped = _decode_into(array, images, image_size, progress)
    if len(ok) < len(images):
        array = array[ok]
    return DecodedSet(array, np.asarray(images.labels, np.int32)[ok], [images.paths[i] for i in ok], skipped)


def make_tf_dataset(
    decoded: DecodedSet,
    batch_size: int = config.BATCH_SIZE,
    shuffle: bool = False,
    seed: int = config.SEED,
    strategy=None,
    epochs: tuple[int, int] | None = None,
):
    """Batches of (uint8 images, int32 labels) from a `DecodedSet`.

    Args:
        shuffle: a new order every epoch.
        seed: the shuffle's seed.
        strategy: the training's `tf.distribute` strategy, or None. Under a
            multi-worker strategy `batch_size` is the global batch and each
            worker reads its own `decoded` (its share, see `shard`) in
            per-replica batches (`distribute_datasets_from_function`), so
            tf.distribute neither shards nor re-batches it again.
        epochs: (first, end) epoch numbers, 0-based: the dataset holds these
            epochs one after the other, each shuffled in `epoch_order(seed,
            epoch)`, so an epoch's batches depend on the seed and its number
            only, not on how many epochs this process ran before (resume).
            Fit it with `steps_per_epoch` = `steps_per_epoch(len(decoded), batch_size)`.
    """
    import tensorflow as tf

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return strategy.distribute_datasets_from_function(
            lambda context: _batches(decoded, context.get_per_replica_batch_size(batch_size), shuffle, seed, epochs)
        )
    return _batches(decoded, batch_size, shuffle, seed, epochs)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of `n` training photos in epoch `epoch`: a permutation from the seed and the epoch number alone."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches per epoch (the last one may be short)."""
    return -(-n // batch_size)


def _indices(n: int, batch_size: int, shuffle: bool, seed: int, epochs: tuple[int, int] | None):
    """Batches of photo indices: one pass, or the epochs `epochs` each in its own seeded order."""
    import tensorflow as tf

    if epochs is None:
        ds = tf.data.Dataset.range(n)
        if shuffle:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size)

    def order(epoch: int) -> np.ndarray:
        return epoch_order(n, seed, int(epoch)) if shuffle else np.arange(n)

    def one_epoch(epoch):
        idx = tf.numpy_function(order, [epoch], tf.int64)
        return tf.data.Dataset.from_tensor_slices(tf.ensure_shape(idx, (n,))).batch(batch_size)

    return tf.data.Dataset.range(*epochs).flat_map(one_epoch)


def _batches(decoded: DecodedSet, batch_size: int, shuffle: bool, seed: int, epochs: tuple[int, int] | None = None):
    import tensorflow as tf

    images, labels = decoded.images, decoded.labels
    size = images.shape[1]

    def gather(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(idx)  # sorted reads are kinder to a memory-mapped cache
        out = np.empty((len(idx), size, size, 3), np.uint8)
        out[order] = images[idx[order]]
        return out, labels[idx]

    def set_shapes(x, y):
        x.set_shape((None, size, size, 3))
        y.set_shape((None,))
        return x, y

    ds = _indices(len(labels), batch_size, shuffle, seed, epochs)
    ds = ds.map(lambda i: tf.numpy_function(gather, [i], (tf.uint8, tf.int32)), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.map(set_shapes).prefetch(tf.data.AUTOTUNE)


def image_files(folder: str | os.PathLike) -> list[Path]:
    """Every image file under `folder` (any depth, hidden files and escaping symlinks left out), sorted.

    Raises:
        DatasetError: the folder does not exist or holds no image.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"{str(folder)!r} is not a folder; pass a folder of photos")
    files = [p for p in _files_under(folder) if p.suffix.lower() in config.IMAGE_EXTENSIONS]
    if not files:
        raise DatasetError(f"{str(folder)!r} holds no images ({', '.join(config.IMAGE_EXTENSIONS)})")
    return files


# --- discovery helpers -------------------------------------------------------


def _visible(folder: Path) -> list[Path]:
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise DatasetError(f"cannot read folder {str(folder)!r}: {exc.strerror or exc}") from exc
    shown = [p for p in entries if not p.name.startswith((".", "_")) and p.name.lower() not in _IGNORED_NAMES]
    return [p for p in shown if _stays_inside(p, folder)]


def _stays_inside(path: Path, folder: Path) -> bool:
    """False for a symlink that leads out of `folder`: a dataset never reads (or moves) files elsewhere."""
    if not path.is_symlink():
        return True
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return False  # dangling or looping
    base = folder.resolve()
    return real == base or base in real.parents


def _class_dirs(folder: Path) -> list[Path]:
    return [p for p in _visible(folder) if p.is_dir() and any(_files_under(p))]


def _has_class_folders(folder: Path) -> bool:
    return len(_class_dirs(folder)) >= 1


def _files_under(folder: Path):
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and name.lower() not in _IGNORED_NAMES and _stays_inside(Path(dirpath) / name, folder):
                yield Path(dirpath) / name


def _flat_files(folder: Path) -> list[Path]:
    return [p for p in _visible(folder) if p.is_file() and _FLAT_NAME.match(p.name)]


def _class_order(names: list[str]) -> list[str]:
    """Cat first, dog second when recognised; otherwise alphabetical, like Keras."""
    if all(n.lower() in _CLASS_ALIASES for n in names):
        return sorted(names, key=lambda n: _CLASS_ALIASES[n.lower()])
    return sorted(names)


def _display_names(folder_names: list[str]) -> list[str]:
    if sorted(_CLASS_ALIASES[n.lower()] for n in folder_names if n.lower() in _CLASS_ALIASES) == [0, 1]:
        return list(config.CLASS_NAMES)
    return list(folder_names)


def _labelled_files(folder: Path) -> tuple[ImageSet, list[str], str]:
    class_dirs = _class_dirs(folder)
    if class_dirs:
        if len(class_dirs) == 1:
            raise DatasetError(
                f"{str(folder)!r} has only one class folder ({class_dirs[0].name!r}); catdog needs two, for example cats/ and dogs/"
            )
        if len(class_dirs) > 2:
            names = ", ".join(repr(d.name) for d in class_dirs)
            raise DatasetError(f"{str(folder)!r} has {len(class_dirs)} class folders ({names}); catdog needs exactly two (cats and dogs)")
        ordered = _class_order([d.name for d in class_dirs])
        names = _display_names(ordered)
        return _files_by_class(folder, names, ordered), names, "folders"
    flat = _flat_files(folder)
    if flat:
        labels = [_CLASS_ALIASES[_FLAT_NAME.match(p.name).group(1).lower()] for p in flat]
        if len(set(labels)) < 2:
            raise DatasetError(f"{str(folder)!r} has only {config.CLASS_NAMES[labels[0]]} images; catdog needs cats and dogs")
        return ImageSet(flat, labels), list(config.CLASS_NAMES), "flat"
    raise DatasetError(
        f"no images found in {str(folder)!r}; expected cats/ and dogs/ folders, "
        "train/ and test/ folders, or files named cat.1.jpg and dog.1.jpg"
    )


def _files_by_class(folder: Path, names: list[str], folder_names: list[str] | None = None) -> ImageSet:
    dirs = {p.name.lower(): p for p in _class_dirs(folder)}
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(folder_names or names):
        candidates = [name.lower(), name.lower() + "s", name.lower().rstrip("s")]
        class_dir = next((dirs[c] for c in candidates if c in dirs), None)
        if class_dir is None:
            raise DatasetError(f"{str(folder)!r} has no folder for class {name!r}; found {sorted(dirs)}")
        files = list(_files_under(class_dir))
        paths.extend(files)
        labels.extend([label] * len(files))
    return ImageSet(paths, labels)


def _relabel(images: ImageSet, names: list[str], wanted: list[str], root: Path) -> ImageSet:
    if sorted(names) != sorted(wanted):
        raise DatasetError(f"{str(root)!r} has classes {names}, but the model knows {wanted}")
    mapping = {i: wanted.index(n) for i, n in enumerate(names)}
    return ImageSet(images.paths, [mapping[label] for label in images.labels])


# --- decoding and caching ----------------------------------------------------


def _decode_into(array: np.ndarray, images: ImageSet, image_size: int, progress) -> tuple[list[int], list[tuple[Path, str]]]:
    def work(i: int):
        try:
            array[i] = load_array(images.paths[i], image_size)
            return None
        except ImageError as exc:
            return str(exc)

    ok: list[int] = []
    skipped: list[tuple[Path, str]] = []
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        for i, error in enumerate(pool.map(work, range(len(images)), chunksize=16)):
            if error is None:
                ok.append(i)
            else:
                skipped.append((images.paths[i], error))
            if progress is not None and (i % 64 == 0 or i == len(images) - 1):
                progress(i + 1, len(images))
    return ok, skipped


def _memory_budget() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available * 0.4)
    except Exception:  # noqa: BLE001
        return 4 << 30


def _cache_key(images: ImageSet, image_size: int) -> str:
    h = hashlib.sha256(f"v{CACHE_FORMAT_VERSION}:{PREPROCESS_VERSION}:{image_size}".encode())
    for path, label in zip(images.paths, images.labels):
        try:
            st = path.stat()
            h.update(f"{path}|{label}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{path}|{label}|missing\n".encode())
    return h.hexdigest()[:32]


def _load_disk_cache(key: str) -> DecodedSet | None:
    folder = config.cache_dir()
    meta_path, data_path = folder / f"{key}.json", folder / f"{key}.npy"
    if not (meta_path.exists() and data_path.exists()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        images = np.load(data_path, mmap_mode="r")
        keep = np.asarray(meta["keep"], dtype=np.int64)
        paths = [Path(p) for p in meta["paths"]]
        labels = np.asarray(meta["labels"], np.int32)
        skipped = [(Path(p), r) for p, r in meta["skipped"]]
    except (OSError, ValueError, KeyError):
        return None
    if len(keep) != len(paths) or images.shape[0] != len(meta["all_paths"]):
        return None
    if len(keep) != images.shape[0]:
        images = _RowView(images, keep)
    return DecodedSet(images, labels, paths, skipped, data_path)


class _RowView:
    """Rows `keep` of a memory-mapped array, without copying it."""

    def __init__(self, base: np.ndarray, keep: np.ndarray):
        self.base, self.keep = base, keep
        self.shape = (len(keep),) + base.shape[1:]
        self.dtype = base.dtype

    def __len__(self) -> int:
        return len(self.keep)

    def __getitem__(self, idx):
        return self.base[self.keep[idx]]

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self.base[self.keep])
        return out.astype(dtype) if dtype is not None else out


def _reserve(path: Path, offset: int, size: int, folder: Path) -> None:
    """Allocate every block of the memory-mapped cache file (bytes offset..size) now.

    A sparse memmap on a full disk fails on first touch with SIGBUS, which
    kills the process without a word; allocating first turns that into an
    OSError (ENOSPC) that names the cache folder.
    """
    with open(path, "r+b") as fh:
        try:
            try:
                os.posix_fallocate(fh.fileno(), offset, size - offset)
                return
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise
            chunk = b"\0" * (1 << 20)  # no fallocate on this file system: ordinary writes report ENOSPC too
            fh.seek(offset)
            for start in range(offset, size, len(chunk)):
                fh.write(chunk[: min(len(chunk), size - start)])
            fh.flush()
            os.fsync(fh.fileno())
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(folder)) from exc


def _decode_to_disk(images: ImageSet, image_size: int, key: str, progress) -> DecodedSet:
    from catdog.atomic import atomic_path, atomic_write_text

    folder = config.cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    data_path = folder / f"{key}.npy"
    with atomic_path(data_path) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(images), image_size, image_size, 3))
        _reserve(tmp, array.offset, array.offset + array.nbytes, folder)
        ok, skipped = _decode_into(array, images, image_size, progress)
        array.flush()
        del array
    meta = {
        "image_size": image_size,
        "all_paths": [str(p) for p in images.paths],
        "keep": ok,
        "paths": [str(images.paths[i]) for i in ok],
        "labels": [images.labels[i] for i in ok],
        "skipped": [[str(p), r] for p, r in skipped],
    }
    atomic_write_text(folder / f"{key}.json", json.dumps(meta))
    return _load_disk_cache(key)


# The Data page's chosen dataset (CATDOG_HOME/active_dataset.json); the Train page reads it.
from catdog.sources import active_dataset, set_active_dataset  # noqa: E402,F401
