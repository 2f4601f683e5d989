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

from catdog import config as defaults
from catdog import data, runs
from catdog.atomic import save_model_atomic  # noqa: F401 - part of training's API
from catdog.data import CACHE_MODES
from catdog.distribute import STRATEGIES, global_batch_size, make_strategy
from catdog.errors import CatdogError, DatasetError, RunError, TrainingBusyError
from catdog.hardware import PRECISIONS, resolve_precision
from catdog.models import build_model, fuse_batch_norm, get_preset

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

    data: str = setting(help="dataset folder (cats/ + dogs/, train/ + test/, or cat.N.jpg files); required unless --resume")
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

    def validate(self) -> None:
        spec = get_preset(self.model)
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


def prepare_data(cfg: TrainConfig, image_size: int, log=print):
    """Discover, split and decode the training and validation images."""
    layout = data.discover(cfg.data)
    train_set, val_set = layout.train, layout.validation
    if cfg.val_data:
        val_set, _ = data.load_labelled_folder(cfg.val_data, layout.class_names)
    elif cfg.val_split:
        train_set, val_set = data.split(layout.train, cfg.val_split, cfg.seed)
    elif val_set is None:
        train_set, val_set = data.split(layout.train, 0.2, cfg.seed)
        log("No validation folder given: holding out 20% of the training images (--val-split 0.2).")
    log(f"Dataset {layout.root} ({layout.kind} layout): classes {layout.class_names}")
    log(f"  train: {len(train_set)} files {train_set.counts(layout.class_names)}")
    log(f"  validation: {len(val_set)} files {val_set.counts(layout.class_names)}")
    decoded = []
    for name, images in (("train", train_set), ("validation", val_set)):
        t0 = time.time()
        ds = data.decode_images(images, image_size, cache=cfg.cache)
        log(f"  decoded {len(ds)} {name} images at {image_size}x{image_size} in {time.time() - t0:.1f}s")
        for path, reason in ds.skipped:
            log(f"  skipped {path}: {reason}")
        decoded.append(ds)
    train_dec, val_dec = decoded
    for name, ds in (("train", train_dec), ("validation", val_dec)):
        present = set(ds.labels.tolist())
        if len(present) < 2:
            raise DatasetError(f"after skipping unreadable files, the {name} set has only one class; add images of both classes")
    return layout, train_dec, val_dec


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
) -> runs.Run:
    """Continue a stopped, failed or killed run from its last checkpoint.

    Uses the run's own config.json settings and appends to its metrics.jsonl:
    epochs after the checkpoint (or a partly trained one) are trained again,
    so no epoch is missing or duplicated.

    Args:
        run: the run (folder, path or id).
        epochs: a new total number of epochs (default: the run's own).
        callbacks, verbose, stream, lock, handle_signals: as for `train`.

    Raises:
        RunError: the run is still running, has no checkpoint, or is already complete.
    """
    stream = stream or sys.stdout
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
    if done >= cfg.epochs:
        raise RunError(f"run {run.id!r} already has all {cfg.epochs} epochs; pass --epochs N with N > {done} to train further")
    spec = get_preset(cfg.model)

    def start() -> None:
        run.write_config(dict(record, epochs=cfg.epochs))
        run.write_status("queued", pid=os.getpid(), resumed=time.time(), resumed_from_epoch=done, error=None, traceback=None, ended=None)

    log = lambda msg: print(msg, file=stream, flush=True)  # noqa: E731
    job = _FitJob(run, cfg, spec, cfg.image_size, callbacks, verbose, log, resume_from={"epoch": done, "best": state.get("best")})
    _supervise(run, Path(run.path).parent, start, lock, handle_signals, lambda request: _fit(job, request), resuming=True)
    return run


def _supervise(run: runs.Run, runs_dir, start, lock: bool, handle_signals: bool, fit, resuming: bool = False) -> None:
    """Run `start` and `fit(request)` holding the lock and signal handlers; mark the run failed if they raise.

    A resume takes the lock before `start` touches the run: a second resume of
    the same run is refused without marking the run that is training as failed.
    """
    root = Path(runs_dir) if runs_dir else None
    locked = False
    request = StopRequested(run)
    old_handlers = {}
    try:
        if resuming and lock:
            runs.acquire_lock(run, root)
            locked = True
        start()
        if lock and not locked:
            runs.acquire_lock(run, root)
            locked = True
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                old_handlers[sig] = signal.signal(sig, request)
        fit(request)
    except BaseException as exc:
        if isinstance(exc, TrainingBusyError) and resuming:
            raise
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
    """A clear RunError for a failed write to the run folder (None for other errors)."""
    if not isinstance(exc, OSError) or exc.errno not in _WRITE_ERRORS:
        return None
    where = exc.filename or run.path
    return RunError(
        f"cannot write {str(where)!r}: {_WRITE_ERRORS[exc.errno]}; free some space or fix the permissions, "
        f"then continue with `catdog train --resume {run.path}` (or pick another --runs-dir)"
    )


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
    layout, train_dec, val_dec = prepare_data(cfg, image_size, log)
    config = run.config()
    config.update(
        class_names=layout.class_names,
        layout=layout.kind,
        n_train=len(train_dec),
        n_validation=len(val_dec),
        skipped=[[str(p), r] for p, r in train_dec.skipped + val_dec.skipped],
        fused_batch_norm=config["precision"] in spec.fuse_batch_norm_in,
    )
    run.write_config(config)
    precision = config["precision"]
    initial_epoch, rows, best = 0, [], None
    strategy = make_strategy(cfg.strategy)
    # Variables (model and optimizer) must be created under the strategy's scope.
    with strategy.scope():
        if resume_from is None:
            model = build_model(cfg.model, image_size, precision=precision, learning_rate=cfg.learning_rate)
        else:
            model, initial_epoch, rows, best = _restore(run, resume_from, log)
        if cfg.jit_compile is not None:
            model.jit_compile = cfg.jit_compile
        if config["fused_batch_norm"]:  # same math, faster steps where measured; saved files keep plain layers
            fuse_batch_norm(model)
    batch_size = global_batch_size(cfg.batch_size, strategy)
    if strategy.num_replicas_in_sync > 1:
        log(f"Strategy {type(strategy).__name__}: {strategy.num_replicas_in_sync} replicas, global batch {batch_size}")
    train_ds = data.make_tf_dataset(train_dec, batch_size, shuffle=True, seed=cfg.seed)
    val_ds = data.make_tf_dataset(val_dec, batch_size)
    steps = -(-len(train_dec) // batch_size)

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
    model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=cfg.epochs,
        initial_epoch=initial_epoch,
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
    save_model_atomic(model, run.model_path, include_optimizer=False)
    rows = run.metrics()
    state = "stopped" if stopper.stopped else "finished"
    run.write_status(state, ended=time.time(), epochs_done=len(rows), error=None)
    log(f"Run {state} after {len(rows)} epoch(s); model saved to {run.model_path}")


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
    import keras

    done = int(resume_from["epoch"])
    checkpoint = run.checkpoint_path
    try:
        model = keras.saving.load_model(checkpoint)
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
    record.update(
        data=str(Path(cfg.data).expanduser().resolve()),
        val_data=str(Path(cfg.val_data).expanduser().resolve()) if cfg.val_data else None,
        image_size=image_size,
        learning_rate=cfg.learning_rate if cfg.learning_rate is not None else spec.learning_rate,
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
