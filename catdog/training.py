"""Training: `TrainConfig` (every setting, also the CLI flags), `train(config, ...)` and `resume(run)`."""

from __future__ import annotations

import argparse
import dataclasses
import errno
import math
import os
import signal
import sys
import threading
import time
import traceback
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Sequence

import numpy as np

from catdog import config as defaults
from catdog import data, runs
from catdog.atomic import save_model_atomic  # noqa: F401 - part of training's API
from catdog.data import CACHE_MODES
from catdog.distribute import STRATEGIES, global_batch_size, make_strategy, worker_shard
from catdog.errors import CatdogError, DatasetError, RunError, TrainingBusyError
from catdog.hardware import PRECISIONS, resolve_precision
from catdog.models import AUGMENTATIONS, build_model, fuse_batch_norm, get_preset, load_keras
from catdog.models.layers import iter_layers

LR_SCHEDULES = ("constant", "cosine")


def cosine_learning_rate(epoch: int, epochs: int, base: float, floor: float = 0.02) -> float:
    """Per-epoch cosine decay from `base` to `floor * base` at the last epoch."""
    if epochs <= 1:
        return base
    progress = min(1.0, epoch / (epochs - 1))
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def setting(
    default: Any = dataclasses.MISSING, *, help: str | None = None, choices: Sequence[str] | None = None, metavar: str | None = None
) -> Any:
    """A `TrainConfig` field that also describes its CLI flag.

    Args:
        default: the default value (lists are copied per instance).
        help: the flag's help text.
        choices: the allowed values (the lists in code, never literals beside them).
        metavar: the value's name in the help.
    """
    metadata = {"help": help, "choices": tuple(choices) if choices else None, "metavar": metavar}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    """Every setting of one training. Saved as config.json in the run folder.

    Each field is also a flag of `catdog train` (`add_config_arguments`), and the
    app's background training passes it back through `config_flags`: a new field
    needs no other code. Bool fields become --x/--no-x, list fields repeated flags.
    """

    data: str | list[str] = setting(
        help="dataset folder (cats/ + dogs/, train/ + test/, or cat.N.jpg files); repeat it to pool several; required unless --resume",
        metavar="DIR",
    )
    val_data: str | None = setting(None, help="a separate labelled validation folder")
    val_split: float | None = setting(
        None, help="fraction of --data held out for validation (default 0.2 when no validation folder exists)"
    )
    model: str = setting(defaults.DEFAULT_PRESET, help="preset name (see `catdog models`)")
    epochs: int = setting(defaults.EPOCHS, help="default: the preset's")
    batch_size: int = setting(defaults.BATCH_SIZE, help="per replica; default: the preset's")
    image_size: int | None = setting(None, help="default: the preset's")  # the preset's own when None
    learning_rate: float | None = setting(None, help="Adam's learning rate (default: the preset's)")
    lr_schedule: str | None = setting(None, choices=LR_SCHEDULES, help="default: the preset's")
    precision: str = setting("auto", choices=PRECISIONS, help="dtype policy (auto: by hardware)")
    early_stopping: int | None = setting(
        None, metavar="PATIENCE", help="stop after PATIENCE epochs without val_loss improvement; restores the best weights"
    )
    checkpoint: bool = setting(True, help="save a checkpoint after each epoch (for --resume)")
    seed: int = setting(defaults.SEED, help="random seed for the split, shuffling and weights")
    cache: str = setting("auto", choices=CACHE_MODES, help="where decoded images are kept")
    strategy: str = setting(
        "auto", choices=STRATEGIES, help="tf.distribute strategy: mirrored = all local GPUs, multiworker = the cluster in TF_CONFIG"
    )
    # None: Keras' choice (XLA on GPUs, off on CPUs, where it measured no faster).
    jit_compile: bool | None = setting(None, help="XLA-compile the training step (default: on with a GPU, off on a CPU)")
    augment: str | None = setting(None, choices=AUGMENTATIONS, help="in-model augmentation strength (default: the preset's)")
    label_smoothing: float | None = setting(None, help="label smoothing of the loss, 0 to 0.5 (default: the preset's)")
    ema: bool | None = setting(None, help="average the weights during training, Adam's EMA (default: the preset's)")
    init_from: str | None = setting(
        None,
        metavar="bundled|RUN",
        help="start from a trained model's weights: 'bundled', a run folder or id, or a .keras file "
        "(learning rate defaults to a tenth of the preset's)",
    )
    calibration_split: float = setting(0.1, help="share of the training photos held out to fit the confidence calibration (0 = none)")
    progressive_size: int | None = setting(
        None,
        metavar="PX",
        help="progressive resizing: the first three quarters of the epochs at this smaller size, the rest at --image-size",
    )

    def __post_init__(self) -> None:
        if isinstance(self.data, (list, tuple)) and len(self.data) == 1:
            self.data = str(self.data[0])  # one folder reads the same however it was given

    def data_folders(self) -> list[str]:
        """The training folders, as a list (`data` may be one path or several)."""
        folders = [self.data] if isinstance(self.data, (str, os.PathLike)) else list(self.data or [])
        return [str(f) for f in folders]

    def validate(self) -> None:
        spec = get_preset(self.model)
        if not self.data_folders() or not all(f.strip() for f in self.data_folders()):
            raise ValueError(f"data must name at least one dataset folder, got {self.data!r}")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {self.epochs!r}")
        if not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= 4096:
            raise ValueError(f"batch_size must be an integer from 1 to 4096, got {self.batch_size!r}")
        size = self.image_size or spec.image_size
        if not isinstance(size, int) or not 32 <= size <= 1024:
            raise ValueError(f"image_size must be an integer from 32 to 1024, got {self.image_size!r}")
        if self.val_split is not None and not 0.0 < self.val_split < 1.0:
            raise ValueError(f"val_split must be between 0 and 1 (exclusive), got {self.val_split!r}")
        if self.val_data and self.val_split:
            raise ValueError("give either val_data or val_split, not both")
        if self.learning_rate is not None and not 0 < self.learning_rate < 10:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if self.lr_schedule not in (None, *LR_SCHEDULES):
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.early_stopping is not None and self.early_stopping < 1:
            raise ValueError(f"early_stopping patience must be >= 1, got {self.early_stopping!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.augment is not None and self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {self.augment!r}")
        if self.augment is not None and spec.augment is None:
            raise ValueError(f"preset {spec.name!r} has no augmentation to choose; leave augment unset")
        if self.label_smoothing is not None and not 0.0 <= self.label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be from 0 up to 0.5, got {self.label_smoothing!r}")
        if self.progressive_size is not None and not (isinstance(self.progressive_size, int) and 32 <= self.progressive_size < size):
            raise ValueError(f"progressive_size must be an integer from 32 up to the image size {size}, got {self.progressive_size!r}")
        if not 0.0 <= self.calibration_split < 0.5:
            raise ValueError(f"calibration_split must be from 0 up to 0.5, got {self.calibration_split!r}")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _field_kind(hint: Any) -> tuple[str, type]:
    """("bool" | "list" | "value", element type) of a TrainConfig field's type hint."""
    members = (
        [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_origin(hint) in (typing.Union, types.UnionType) else [hint]
    )
    if bool in members:
        return "bool", bool
    for member in members:
        if typing.get_origin(member) in (list, tuple):
            return "list", (typing.get_args(member) or (str,))[0]
    return "value", members[0]


def _config_fields() -> list[tuple[dataclasses.Field, str, type]]:
    hints = typing.get_type_hints(TrainConfig)
    return [(f, *_field_kind(hints[f.name])) for f in dataclasses.fields(TrainConfig)]


def config_flags(cfg: TrainConfig) -> list[str]:
    """The `catdog train` flags that rebuild `cfg` exactly (None values are left out)."""
    flags: list[str] = []
    for f, kind, _ in _config_fields():
        value = getattr(cfg, f.name)
        if value is None:
            continue
        if kind == "bool":
            flags.append(_flag(f.name) if value else _flag(f"no_{f.name}"))
        elif kind == "list":
            for item in value if isinstance(value, (list, tuple)) else [value]:
                flags += [_flag(f.name), str(item)]
        else:
            flags += [_flag(f.name), repr(value) if isinstance(value, float) else str(value)]
    return flags


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per TrainConfig field; unset flags parse as None (the field's default)."""
    for f, kind, element in _config_fields():
        common = {"dest": f.name, "default": None, "help": f.metadata.get("help")}
        if kind == "bool":
            parser.add_argument(_flag(f.name), action=argparse.BooleanOptionalAction, **common)
            continue
        extra = {"choices": f.metadata.get("choices"), "metavar": f.metadata.get("metavar")}
        action = "append" if kind == "list" else "store"
        parser.add_argument(_flag(f.name), type=element, action=action, **common, **{k: v for k, v in extra.items() if v})


def config_from_args(args: argparse.Namespace, **defaults: Any) -> TrainConfig:
    """The TrainConfig of parsed `add_config_arguments` flags; `defaults` fill the unset ones."""
    given = {f.name: getattr(args, f.name) for f, _, _ in _config_fields() if getattr(args, f.name, None) is not None}
    return TrainConfig(**{**defaults, **given})


class StopRequested:
    """Set by SIGINT/SIGTERM or the run's STOP file; read by `StopOnRequest`."""

    def __init__(self, run: runs.Run):
        self.run = run
        self.event = threading.Event()

    def __call__(self, signum=None, frame=None) -> None:
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set() or self.run.stop_requested()


@dataclass
class PreparedData:
    """Decoded training, validation and calibration images, and where they came from."""

    class_names: list[str]
    kind: str
    folders: list[dict]
    train: data.DecodedSet
    validation: data.DecodedSet
    calibration: data.DecodedSet | None


def _pool(sets: Sequence[data.ImageSet]) -> data.ImageSet:
    return data.ImageSet([p for s in sets for p in s.paths], [label for s in sets for label in s.labels])


def prepare_data(cfg: TrainConfig, image_size: int, log=print) -> PreparedData:
    """Discover, pool, split and decode the training, validation and calibration images.

    The calibration images are a seeded, stratified share (`cfg.calibration_split`)
    of the *training* photos, held out from training; validation is never used to calibrate.
    """
    layouts = data.discover_all(cfg.data_folders())
    names = layouts[0].class_names
    train_set = _pool([layout.train for layout in layouts])
    own_validation = [layout.validation for layout in layouts if layout.validation is not None]
    if cfg.val_data:
        val_set, _ = data.load_labelled_folder(cfg.val_data, names)
    elif cfg.val_split:
        train_set, val_set = data.split(train_set, cfg.val_split, cfg.seed)
    elif own_validation:
        val_set = _pool(own_validation)
    else:
        train_set, val_set = data.split(train_set, 0.2, cfg.seed)
        log("No validation folder given: holding out 20% of the training images (--val-split 0.2).")
    calib_set = None
    if cfg.calibration_split:
        try:
            train_set, calib_set = data.split(train_set, cfg.calibration_split, cfg.seed + 1)
        except DatasetError:
            log(f"Too few training images to hold out {cfg.calibration_split:.0%} for calibration: the model stays uncalibrated.")
    for layout in layouts:
        log(f"Dataset {layout.root} ({layout.kind} layout): classes {layout.class_names}, {len(layout.train)} training files")
    log(f"  train: {len(train_set)} files {train_set.counts(names)}")
    log(f"  validation: {len(val_set)} files {val_set.counts(names)}")
    if calib_set is not None:
        log(f"  calibration (held out from train): {len(calib_set)} files {calib_set.counts(names)}")
    decoded = {}
    for name, images in (("train", train_set), ("validation", val_set), ("calibration", calib_set)):
        if images is None:
            continue
        t0 = time.time()
        if name == "train":  # multiworker: each worker decodes only its own share
            images = data.shard(images, *worker_shard(cfg.strategy))
        decoded[name] = data.decode_images(images, image_size, cache=cfg.cache)
        log(f"  decoded {len(decoded[name])} {name} images at {image_size}x{image_size} in {time.time() - t0:.1f}s")
        for path, reason in decoded[name].skipped:
            log(f"  skipped {path}: {reason}")
    for name in ("train", "validation"):
        ds = decoded[name]
        if not len(ds):
            folders_text = " ".join(cfg.data_folders())
            raise DatasetError(
                f"none of the {len(ds.skipped)} {name} images could be read; check them with `catdog data inspect {folders_text}`"
            )
        if len(set(ds.labels.tolist())) < 2:
            raise DatasetError(f"after skipping unreadable files, the {name} set has only one class; add images of both classes")
    folders = [
        {
            "path": str(layout.root),
            "layout": layout.kind,
            "train": layout.train.counts(names),
            "validation": layout.validation.counts(names) if layout.validation is not None else None,
        }
        for layout in layouts
    ]
    kind = layouts[0].kind if len(layouts) == 1 else "+".join(layout.kind for layout in layouts)
    return PreparedData(names, kind, folders, decoded["train"], decoded["validation"], decoded.get("calibration"))


def train(
    cfg: TrainConfig,
    runs_dir: str | os.PathLike | None = None,
    run_id: str | None = None,
    callbacks: Sequence = (),
    verbose: int | str = "auto",
    stream: IO[str] | None = None,
    lock: bool = True,
    handle_signals: bool = True,
) -> runs.Run:
    """Train a preset on a dataset folder and write everything to a run folder.

    Args:
        cfg: the settings.
        runs_dir: parent of the run folder (default `catdog.config.runs_dir()`).
        run_id: the run folder's name (default: timestamp and preset).
        callbacks: extra Keras callbacks.
        verbose: Keras `fit` verbosity (1 = progress bar).
        stream: where messages go (default stdout).
        lock: take the one-training-per-machine lock.
        handle_signals: turn SIGINT/SIGTERM into a clean stop (main thread only).

    Returns:
        The run, whose status is finished or stopped.

    Raises:
        CatdogError or ValueError: bad settings or data; the run is marked failed.
    """
    stream = stream or sys.stdout

    def log(msg: str) -> None:
        print(msg, file=stream, flush=True)

    cfg.validate()
    spec = get_preset(cfg.model)
    image_size = cfg.image_size or spec.image_size
    if cfg.init_from:
        resolve_init_from(cfg.init_from)  # a wrong --init-from is refused before a run folder exists
    run = runs.create_run(runs_dir, run_id, cfg.model)

    def start() -> None:
        run.write_config(_config_record(cfg, image_size, spec))
        run.write_status("queued", pid=os.getpid(), started=time.time())

    job = _FitJob(run, cfg, spec, image_size, callbacks, verbose, log)
    _supervise(run, runs_dir, start, lock, handle_signals, lambda request: _fit(job, request))
    return run


def resume(
    run: runs.Run | str | os.PathLike,
    epochs: int | None = None,
    callbacks: Sequence = (),
    verbose: int | str = "auto",
    stream: IO[str] | None = None,
    lock: bool = True,
    handle_signals: bool = True,
    requested_at: float | None = None,
) -> runs.Run:
    """Continue a stopped, failed or killed run from its last checkpoint.

    Uses the run's own config.json settings and appends to its metrics.jsonl:
    epochs after the checkpoint (or a partly trained one) are trained again,
    so no epoch is missing or duplicated. The stop request that ended the
    previous attempt is withdrawn. A run killed after its last epoch but
    before its model was written gets the model from its last checkpoint.

    Args:
        run: the run (folder, path or id).
        epochs: a new total number of epochs (default: the run's own).
        callbacks, verbose, stream, lock, handle_signals: as for `train`.
        requested_at: when the resume was asked for (default: now); a stop
            requested later is honoured, an older one is withdrawn.

    Raises:
        RunError: the run is still running, has no checkpoint, or is already complete.
    """
    stream = stream or sys.stdout
    requested_at = time.time() if requested_at is None else requested_at
    run = run if isinstance(run, runs.Run) else runs.open_run(run)
    status = run.status()
    if status.get("state") in runs.ACTIVE_STATES:
        raise RunError(f"run {run.id!r} is still running (pid {status.get('pid')}); stop it before resuming")
    state = run.checkpoint_state()
    if not state or not run.checkpoint_path.exists():
        raise RunError(f"run {run.id!r} has no checkpoint to resume from (no epoch finished, or --no-checkpoint); start a new training")
    record = run.config()
    cfg = TrainConfig(**{f.name: record[f.name] for f in dataclasses.fields(TrainConfig) if f.name in record})
    cfg.precision = record.get("precision", cfg.precision)
    cfg.epochs = epochs or cfg.epochs
    cfg.validate()
    done = int(state["epoch"]) - (1 if state.get("partial") else 0)
    if done >= cfg.epochs and not run.model_path.exists():
        _finish_from_checkpoint(run, lambda m: print(m, file=stream, flush=True))
        return run
    if done >= cfg.epochs:
        raise RunError(f"run {run.id!r} already has all {cfg.epochs} epochs; pass --epochs N with N > {done} to train further")
    spec = get_preset(cfg.model)

    def start() -> None:
        run.clear_stop(before=requested_at)
        run.write_config(dict(record, epochs=cfg.epochs))
        run.write_status("queued", pid=os.getpid(), resumed=time.time(), resumed_from_epoch=done, error=None, traceback=None, ended=None)

    log = lambda msg: print(msg, file=stream, flush=True)  # noqa: E731
    job = _FitJob(run, cfg, spec, cfg.image_size, callbacks, verbose, log, resume_from={"epoch": done, "best": state.get("best")})
    _supervise(run, Path(run.path).parent, start, lock, handle_signals, lambda request: _fit(job, request), resuming=True)
    return run


def _remove_unstarted(run: runs.Run) -> None:
    """Remove a new run folder that nothing was written to (only a launcher's train.log, if any)."""
    try:
        if {p.name for p in run.path.iterdir()} <= {"train.log"}:
            run.log_path.unlink(missing_ok=True)
            run.path.rmdir()
    except OSError:
        pass


def _finish_from_checkpoint(run: runs.Run, log) -> None:
    """Write model.keras from the last checkpoint of a run that trained every epoch but was killed before saving."""
    last = run.checkpoint_path  # the file checkpoint/state.json names (last.keras for older runs)
    try:
        model = load_keras(last, compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a bad file
        raise RunError(f"cannot load checkpoint {str(last)!r}: {exc}; start a new training") from exc
    save_model_atomic(model, run.model_path, include_optimizer=False)
    for leftover in run.path.rglob(".tmp-*"):  # half-saved models of the killed process
        leftover.unlink(missing_ok=True)
    rows = run.metrics()
    run.write_status("finished", ended=time.time(), epochs_done=len(rows), error=None, traceback=None, recovered_from_checkpoint=True)
    log(f"Run {run.id} had trained all its epochs but was killed before saving its model; model saved from {last} to {run.model_path}")


def _supervise(run: runs.Run, runs_dir, start, lock: bool, handle_signals: bool, fit, resuming: bool = False) -> None:
    """Run `start` and `fit(request)` holding the lock and signal handlers; mark the run failed if they raise.

    The lock is taken before `start` touches the run: a second resume of the
    same run is refused without marking the run that is training as failed,
    and a refused new training leaves no run folder behind.
    """
    root = Path(runs_dir) if runs_dir else None
    locked = False
    request = StopRequested(run)
    old_handlers = {}
    if lock:
        try:
            runs.acquire_lock(run, root)
        except TrainingBusyError:
            if not resuming:
                _remove_unstarted(run)  # refused before it began: leave nothing behind
            raise
        locked = True
    try:
        start()
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                old_handlers[sig] = signal.signal(sig, request)
        fit(request)
    except BaseException as exc:
        clear = _write_error(exc, run)
        message = str(clear or exc) if isinstance(clear or exc, (CatdogError, ValueError)) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, KeyboardInterrupt):
            message = "interrupted"
        try:
            run.write_status("failed", error=message, ended=time.time(), traceback=traceback.format_exc(limit=20))
        except OSError:
            pass  # a full or read-only disk: the error below still says what happened
        if clear is not None:
            raise clear from exc
        raise
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        if locked:
            runs.release_lock(root)


_WRITE_ERRORS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


def _write_error(exc: BaseException, run: runs.Run) -> RunError | None:
    """A clear RunError for a failed write to the run folder or the decode cache (None for other errors)."""
    if not isinstance(exc, OSError) or exc.errno not in _WRITE_ERRORS:
        return None
    where = exc.filename or run.path
    if _is_within(where, defaults.cache_dir()):
        then = "(it is the decode cache: set CATDOG_CACHE_DIR to a larger disk, or use --cache memory), then start the training again"
    elif (run.checkpoint_dir / "state.json").exists():
        then = f"then continue with `catdog train --resume {run.path}` (or pick another --runs-dir)"
    else:
        then = "then start the training again (no epoch was checkpointed yet), or pick another --runs-dir"
    return RunError(f"cannot write {str(where)!r}: {_WRITE_ERRORS[exc.errno]}; free some space or fix the permissions, {then}")


def _is_within(path, folder: Path) -> bool:
    try:
        Path(os.path.abspath(path)).relative_to(os.path.abspath(folder))
        return True
    except (ValueError, TypeError):
        return False


@dataclass
class _FitJob:
    """What `_fit` trains: the run, its settings, and how `train`/`resume` were called."""

    run: runs.Run
    cfg: TrainConfig
    spec: Any  # catdog.models.Preset
    image_size: int
    callbacks: Sequence = ()
    verbose: int | str = "auto"
    log: Callable[[str], None] = print
    resume_from: dict | None = None  # {"epoch": done, "best": value} when resuming


def _fit(job: _FitJob, request: StopRequested) -> None:
    import keras

    run, cfg, spec, image_size, log, resume_from = job.run, job.cfg, job.spec, job.image_size, job.log, job.resume_from
    extra_callbacks, verbose = job.callbacks, job.verbose

    keras.utils.set_random_seed(cfg.seed)
    prepared = prepare_data(cfg, image_size, log)
    train_dec, val_dec, calib_dec = prepared.train, prepared.validation, prepared.calibration
    config = run.config()
    config.update(
        class_names=prepared.class_names,
        layout=prepared.kind,
        data_folders=prepared.folders,
        n_train=len(train_dec),
        n_validation=len(val_dec),
        n_calibration=len(calib_dec) if calib_dec is not None else 0,
        skipped=[[str(p), r] for d in (train_dec, val_dec, calib_dec) if d is not None for p, r in d.skipped],
        fused_batch_norm=config["precision"] in spec.fuse_batch_norm_in,
    )
    run.write_config(config)
    precision = config["precision"]
    initial_epoch, rows, best = 0, [], None
    strategy = make_strategy(cfg.strategy)
    # Variables (model and optimizer) must be created under the strategy's scope.
    with strategy.scope():
        if resume_from is None:
            first_size = progressive_phases(cfg.epochs, image_size, config.get("progressive_size"))[0][0]
            model = _new_model(cfg, spec, config, first_size, precision, log)
        else:
            model, initial_epoch, rows, best = _restore(run, resume_from, log)
        if cfg.jit_compile is not None:
            model.jit_compile = cfg.jit_compile
        if config["fused_batch_norm"]:  # same math, faster steps where measured; saved files keep plain layers
            fuse_batch_norm(model)
    batch_size = global_batch_size(cfg.batch_size, strategy)
    if strategy.num_replicas_in_sync > 1:
        log(f"Strategy {type(strategy).__name__}: {strategy.num_replicas_in_sync} replicas, global batch {batch_size}")
    train_ds = data.make_tf_dataset(train_dec, batch_size, shuffle=True, seed=cfg.seed, strategy=strategy)
    val_ds = data.make_tf_dataset(val_dec, batch_size, strategy=strategy)
    steps = -(-len(train_dec) * worker_shard(cfg.strategy)[1] // batch_size)  # a worker's share runs in per-worker batches

    from catdog.callbacks import AtomicCheckpoint, RunRecorder, StopOnRequest

    stopper = StopOnRequest(request)
    fine_tune = spec.fine_tune_epochs if spec.fine_tune_layers and resume_from is None else 0
    callbacks = [RunRecorder(run, cfg.epochs + fine_tune, steps, initial_rows=rows, log=log), stopper]
    if cfg.checkpoint:
        callbacks.append(AtomicCheckpoint(run, best=best))
    schedule = config.get("lr_schedule") or "constant"
    if schedule == "cosine":
        base = config["learning_rate"]
        # First, so the epoch's learning rate is in the logs the recorder writes.
        callbacks.insert(0, keras.callbacks.LearningRateScheduler(lambda epoch, lr: cosine_learning_rate(epoch, cfg.epochs, base)))
    if cfg.early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.early_stopping, restore_best_weights=True, verbose=1)
        )
    callbacks.extend(extra_callbacks)

    run.write_status("running", pid=os.getpid())
    bn = "fused BatchNorm" if config["fused_batch_norm"] else "Keras BatchNorm"
    log(f"Training {cfg.model} ({model.count_params():,} parameters, {precision}, {bn}) for {cfg.epochs} epochs, batch {cfg.batch_size}")
    for size, start, end in progressive_phases(cfg.epochs, image_size, config.get("progressive_size")):
        if end <= initial_epoch or stopper.stopped:
            continue
        if model.input_shape[1] != size:
            log(f"Progressive resizing: epochs {start + 1}-{end} at {size}x{size}")
            with strategy.scope():
                model = _resized(model, size, config, precision)
        if size != image_size:
            phase_train, phase_val = (_redecode(d, size, cfg.cache) for d in (train_dec, val_dec))
            phase_ds = (
                data.make_tf_dataset(phase_train, batch_size, shuffle=True, seed=cfg.seed, strategy=strategy),
                data.make_tf_dataset(phase_val, batch_size, strategy=strategy),
            )
        else:
            phase_ds = train_ds, val_ds
        model.fit(
            phase_ds[0],
            validation_data=phase_ds[1],
            epochs=end,
            initial_epoch=max(start, initial_epoch),
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,
        )
    if fine_tune and not stopper.stopped:
        with strategy.scope():  # the new optimizer's variables belong to the strategy too
            _fine_tune(model, spec, config["learning_rate"], callbacks, log)
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=cfg.epochs + fine_tune,
            initial_epoch=cfg.epochs,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,
        )
    if calib_dec is not None:
        config = run.config()
        config["calibration"] = calibrate(model, calib_dec, val_dec, log)
        run.write_config(config)
    save_model_atomic(model, run.model_path, include_optimizer=False)
    from catdog.onnx_runtime import write_onnx  # model.onnx for ONNX Runtime; a failure only warns

    write_onnx(run.path, logger=log)
    rows = run.metrics()
    state = "stopped" if stopper.stopped else "finished"
    run.write_status(state, ended=time.time(), epochs_done=len(rows), error=None)
    log(f"Run {state} after {len(rows)} epoch(s); model saved to {run.model_path}")


def progressive_phases(epochs: int, image_size: int, small: int | None) -> list[tuple[int, int, int]]:
    """(size, first epoch, end epoch) per phase: the first three quarters at `small`, the rest at full size."""
    if not small or small >= image_size or epochs < 2:
        return [(image_size, 0, epochs)]
    switch = epochs - max(1, epochs // 4)
    return [(small, 0, switch), (image_size, switch, epochs)]


def _build_for_recipe(config: dict, size: int, precision: str, weights_from=None):
    """The run's preset at `size`, with `weights_from`'s weights if given, compiled with the run's recipe."""
    options = {"augment": config["augment"]} if config.get("augment") else {}
    model = build_model(config["model"], size, precision=precision, compile=False, **options)
    if weights_from is not None:
        copy_weights(weights_from, model)
    compile_for_training(model, config["learning_rate"], config.get("label_smoothing") or 0.0, bool(config.get("ema")))
    return model


def _resized(model, size: int, config: dict, precision: str):
    """The same network and weights at another input size, compiled afresh (the phases share no optimizer state)."""
    resized = _build_for_recipe(config, size, precision, weights_from=model)
    if config.get("fused_batch_norm"):
        fuse_batch_norm(resized)
    return resized


def _redecode(decoded: data.DecodedSet, size: int, cache: str) -> data.DecodedSet:
    return data.decode_images(data.ImageSet(list(decoded.paths), decoded.labels.tolist()), size, cache=cache)


def _new_model(cfg: TrainConfig, spec, config: dict, image_size: int, precision: str, log):
    """The preset, compiled with the run's recipe, and warm-started when `init_from` says so."""
    model = _build_for_recipe(config, image_size, precision)
    if cfg.init_from:
        source = init_weights_from(model, config.get("init_from") or cfg.init_from)
        log(f"Starting from the weights of {source}")
    return model


def compile_for_training(model, learning_rate: float, label_smoothing: float = 0.0, ema: bool = False) -> None:
    """Adam, binary cross-entropy (optionally label-smoothed) and accuracy, as the notebook compiles."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate, use_ema=ema, ema_momentum=EMA_MOMENTUM),
        loss=keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing),
        metrics=["accuracy"],
    )


EMA_MOMENTUM = 0.99
WARM_START_LR_FACTOR = 0.1  # a warm start fine-tunes at a tenth of the preset's learning rate


def resolve_init_from(init_from: str) -> Path:
    """The model file that `--init-from` names: "bundled", a run folder or id, or a .keras file."""
    from catdog.predict import bundled_model_dir, resolve_model

    if init_from == "bundled":
        folder = bundled_model_dir()
        if folder is None:
            raise RunError("the bundled model is missing (assets/model/model.keras); reinstall catdog or pass --init-from RUN")
        return folder / defaults.MODEL_FILENAME
    model_file, _ = resolve_model(init_from)
    return model_file


def init_weights_from(model, init_from: str) -> str:
    """Copy the weights of a trained model into `model`, layer by layer, by name.

    Layers without weights (augmentation, pooling) may differ; every layer with
    weights must exist in the source with the same shapes.

    Raises:
        RunError: the source cannot be loaded or its network does not fit.
    """
    model_file = resolve_init_from(init_from)
    try:
        source = load_keras(model_file, compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a bad file
        raise RunError(f"cannot load {str(model_file)!r} to start from: {exc}; pick a finished run or 'bundled'") from exc
    try:
        copy_weights(source, model)
    except ValueError as exc:
        raise RunError(
            f"cannot start from {str(model_file)!r}: {exc} (another preset or image size); "
            "train that preset from scratch or pick a run of the same preset"
        ) from exc
    return str(model_file)


def copy_weights(source, target) -> None:
    """Copy weights layer by layer, by name; layers without weights may differ.

    Raises:
        ValueError: a layer of `target` with weights is missing in `source`, or its shapes differ.
    """
    by_name = {layer.name: layer for layer in iter_layers(source)}
    for layer in iter_layers(target):
        if not layer.weights:
            continue
        other = by_name.get(layer.name)
        shapes = [tuple(w.shape) for w in layer.weights]
        if other is None or [tuple(w.shape) for w in other.weights] != shapes:
            raise ValueError(f"its network differs from {target.name!r} at layer {layer.name!r}")
        layer.set_weights(other.get_weights())


def calibrate(model, calibration: data.DecodedSet, validation: data.DecodedSet | None = None, log=print) -> dict:
    """Fit the temperature on held-out training photos; report ECE and log loss before and after.

    The validation figures are reported only, never used to fit.
    """
    from catdog import calibration as cal

    def probs(decoded):
        return model.predict(np.asarray(decoded.images), batch_size=64, verbose=0).reshape(-1).astype(np.float64)

    raw = probs(calibration)
    temperature = cal.fit_temperature(calibration.labels, raw)
    record = {
        "temperature": round(temperature, 6),
        "uncertain_below": cal.DEFAULT_UNCERTAIN_BELOW,
        "fitted_on": len(calibration),
        "method": "temperature scaling on held-out training photos",
    }
    for name, decoded in (("calibration", calibration), ("validation", validation)):
        if decoded is None or not len(decoded):
            continue
        p = raw if name == "calibration" else probs(decoded)
        scaled = cal.apply_temperature(p, temperature)
        record[name] = {
            "ece_before": round(cal.expected_calibration_error(decoded.labels, p), 5),
            "ece_after": round(cal.expected_calibration_error(decoded.labels, scaled), 5),
            "log_loss_before": round(cal.log_loss(decoded.labels, p), 5),
            "log_loss_after": round(cal.log_loss(decoded.labels, scaled), 5),
        }
    shown = record.get("validation") or record["calibration"]
    log(
        f"Calibrated on {len(calibration)} held-out training photos: temperature {temperature:.3f}; "
        f"ECE {shown['ece_before']:.4f} -> {shown['ece_after']:.4f}, log loss {shown['log_loss_before']:.4f} -> "
        f"{shown['log_loss_after']:.4f} ({'validation' if 'validation' in record else 'calibration'} photos)"
    )
    return record


def warm_start_fits(preset: str, image_size: int, class_names: Sequence[str]) -> bool:
    """Whether starting from the bundled model suits this training: same preset and size, two classes."""
    from catdog.predict import bundled_model_dir

    folder = bundled_model_dir()
    if folder is None or len(class_names) != 2:
        return False
    bundled = runs.read_json(folder / "config.json", {}) or {}
    return bundled.get("preset", bundled.get("model")) == preset and bundled.get("image_size") == image_size


def near_chance(
    rows: Sequence[dict], n_classes: int = 2, after_epochs: int = 2, margin: float = 0.1, n_validation: int | None = None
) -> bool:
    """True when, after `after_epochs` epochs or more, the latest validation accuracy is still near chance.

    "Latest" is the mean of the last two epochs, and "near" is within `margin`
    of chance, or within two standard errors of it when a small validation set
    (`n_validation` photos) makes one lucky epoch look like learning.
    """
    accs = [r.get("val_accuracy") for r in rows if isinstance(r.get("val_accuracy"), (int, float))]
    if len(accs) < after_epochs:
        return False
    chance = 1.0 / max(n_classes, 1)
    tolerance = margin
    if n_validation:
        tolerance = max(margin, 2 * math.sqrt(chance * (1 - chance) / n_validation))
    return sum(accs[-2:]) / len(accs[-2:]) < chance + tolerance


def _fine_tune(model, spec, learning_rate: float, callbacks: list, log) -> None:
    """Unfreeze the backbone's top layers and recompile at a 10x lower learning rate.

    The frozen phase's learning-rate schedule is dropped (it would set the rate
    back up); BatchNorm stays in inference mode (the backbone is called with
    training=False), as Keras' transfer-learning guide advises.
    """
    import keras

    from catdog.models.transfer import unfreeze_top

    unfrozen = unfreeze_top(model, spec.fine_tune_layers)
    callbacks[:] = [c for c in callbacks if not isinstance(c, keras.callbacks.LearningRateScheduler)]
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate / 10), loss="binary_crossentropy", metrics=["accuracy"])
    log(f"Fine-tuning: {unfrozen} backbone layers unfrozen, learning rate {learning_rate / 10:g}, {spec.fine_tune_epochs} more epochs")


def _restore(run: runs.Run, resume_from: dict, log):
    """The checkpointed model (with its optimizer state) and the metrics rows it covers."""
    done = int(resume_from["epoch"])
    checkpoint = run.checkpoint_path
    try:
        model = load_keras(checkpoint, compile=True)  # with its optimizer state
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a bad file
        raise RunError(f"cannot load checkpoint {str(checkpoint)!r}: {exc}; start a new training") from exc
    # Rows after the checkpoint (a killed or stopped epoch) are trained again, not kept twice.
    rows = [r for r in run.metrics() if r.get("epoch", 0) <= done]
    run.write_metrics(rows)
    for leftover in run.path.rglob(".tmp-*"):  # half-saved models of the killed process
        leftover.unlink(missing_ok=True)
    runs.remove_stale_checkpoints(run)  # saved by the killed process after its last state.json
    log(f"Resuming {run.id} after epoch {done} from {checkpoint}")
    return model, done, rows, resume_from.get("best")


def _config_record(cfg: TrainConfig, image_size: int, spec) -> dict:
    import keras
    import tensorflow as tf

    record = dataclasses.asdict(cfg)
    folders = [str(Path(f).expanduser().resolve()) for f in cfg.data_folders()]
    warm = bool(cfg.init_from)
    base_lr = spec.learning_rate * (WARM_START_LR_FACTOR if warm else 1.0)
    record.update(
        data=folders[0] if len(folders) == 1 else folders,
        augment=cfg.augment or spec.augment,
        label_smoothing=spec.label_smoothing if cfg.label_smoothing is None else cfg.label_smoothing,
        ema=spec.ema if cfg.ema is None else cfg.ema,
        init_from=str(resolve_init_from(cfg.init_from)) if warm else None,
        val_data=str(Path(cfg.val_data).expanduser().resolve()) if cfg.val_data else None,
        image_size=image_size,
        learning_rate=cfg.learning_rate if cfg.learning_rate is not None else base_lr,
        lr_schedule=cfg.lr_schedule or spec.lr_schedule,
        precision=resolve_precision(cfg.precision),
        preset=spec.name,
        class_names=list(defaults.CLASS_NAMES),
        threshold=defaults.THRESHOLD,
        preprocessing={"resize": "PIL bilinear, squash to square", "scale": "Rescaling(1/255) inside the model", "input": "uint8 RGB"},
        versions={"tensorflow": tf.__version__, "keras": keras.__version__, "python": sys.version.split()[0]},
        created=time.time(),
    )
    return record
