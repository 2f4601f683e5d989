"""Training: `train(config, ...)` and the callbacks that write the run folder."""

from __future__ import annotations

import dataclasses
import math
import errno
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Sequence

from catdog import config as defaults
from catdog import data, runs
from catdog.errors import CatdogError, DatasetError, RunError, TrainingBusyError
from catdog.distribute import STRATEGIES, global_batch_size, make_strategy
from catdog.hardware import resolve_precision
from catdog.models import build_model, fuse_batch_norm, get_preset


LR_SCHEDULES = ("constant", "cosine")


def cosine_learning_rate(epoch: int, epochs: int, base: float, floor: float = 0.02) -> float:
    """Per-epoch cosine decay from `base` to `floor * base` at the last epoch."""
    if epochs <= 1:
        return base
    progress = min(1.0, epoch / (epochs - 1))
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


@dataclass
class TrainConfig:
    """Every setting of one training. Saved as config.json in the run folder."""

    data: str
    val_data: str | None = None
    val_split: float | None = None
    model: str = defaults.DEFAULT_PRESET
    epochs: int = defaults.EPOCHS
    batch_size: int = defaults.BATCH_SIZE
    image_size: int | None = None  # the preset's own when None
    learning_rate: float | None = None  # the preset's own when None
    lr_schedule: str | None = None  # "constant" or "cosine"; the preset's own when None
    precision: str = "auto"
    early_stopping: int | None = None  # patience in epochs; None = off
    checkpoint: bool = True
    seed: int = defaults.SEED
    cache: str = "auto"
    strategy: str = "auto"  # catdog.distribute.STRATEGIES; batch_size is per replica
    jit_compile: bool | None = None  # None: Keras' choice (XLA on GPUs, off on CPUs, where it measured no faster)
    extra: dict = field(default_factory=dict)

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


class StopRequested:
    """Set by SIGINT/SIGTERM or the run's STOP file; read by `StopOnRequest`."""

    def __init__(self, run: runs.Run):
        self.run = run
        self.event = threading.Event()

    def __call__(self, signum=None, frame=None) -> None:
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set() or self.run.stop_requested()


def _keras_callbacks():
    import keras

    class RunRecorder(keras.callbacks.Callback):
        """Writes progress.json per batch and metrics.jsonl + plots per epoch."""

        def __init__(self, run: runs.Run, epochs: int, steps: int, initial_rows: Sequence[dict] = (), min_interval: float = 0.5, log=None):
            super().__init__()
            self.log = log
            self.run, self.epochs, self.steps = run, epochs, steps
            self.rows = list(initial_rows)
            self.min_interval = min_interval
            self._last_write = 0.0
            self._epoch_start = time.time()
            self._epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch, self._epoch_start = epoch, time.time()
            self._write_progress(0, "train", force=True)

        def on_train_batch_end(self, batch, logs=None):
            self._write_progress(batch + 1, "train")

        def on_test_begin(self, logs=None):
            self._write_progress(self.steps, "validate", force=True)

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            row = {"epoch": epoch + 1, "seconds": round(time.time() - self._epoch_start, 3)}
            for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
                row[key] = float(logs[key]) if key in logs else None
            if "learning_rate" in logs:
                row["learning_rate"] = float(logs["learning_rate"])
            if getattr(self.model, "stop_training", False):
                row["partial"] = True
            self.rows = [r for r in self.rows if r["epoch"] != row["epoch"]] + [row]
            self.run.write_metrics(self.rows)
            self._write_progress(self.steps, "epoch_end", force=True)
            if self.log is not None:
                shown = " - ".join(f"{k}: {row[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if row[k] is not None)
                self.log(f"epoch {epoch + 1}/{self.epochs} - {row['seconds']:.1f}s - {shown}")
            from catdog.plots import save_notebook_plots

            save_notebook_plots(self.run)

        def _write_progress(self, batch: int, phase: str, force: bool = False):
            now = time.time()
            if not force and now - self._last_write < self.min_interval and batch < self.steps:
                return
            self._last_write = now
            elapsed = now - self._epoch_start
            done_epochs = [r["seconds"] for r in self.rows if not r.get("partial")]
            per_epoch = (sum(done_epochs) / len(done_epochs)) if done_epochs else (elapsed / batch * self.steps if batch else None)
            remaining_epochs = self.epochs - self._epoch - 1
            eta = None
            if per_epoch is not None:
                if phase == "epoch_end":
                    in_epoch = 0.0
                elif done_epochs:
                    in_epoch = max(0.0, per_epoch - elapsed)
                else:
                    in_epoch = elapsed / batch * (self.steps - batch) if batch else 0.0
                eta = round(in_epoch + remaining_epochs * per_epoch, 1)
            self.run.write_progress(
                {
                    "epoch": self._epoch + 1,
                    "epochs": self.epochs,
                    "batch": batch,
                    "batches": self.steps,
                    "phase": phase,
                    "elapsed_epoch": round(elapsed, 2),
                    "eta_seconds": eta,
                    "updated": now,
                }
            )

    class StopOnRequest(keras.callbacks.Callback):
        """Ends training after the current batch when a stop was requested."""

        def __init__(self, request: StopRequested):
            super().__init__()
            self.request = request
            self.stopped = False

        def on_train_batch_end(self, batch, logs=None):
            if self.request.is_set():
                self.stopped = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            self.on_train_batch_end(0)

    class AtomicCheckpoint(keras.callbacks.Callback):
        """Saves checkpoint/last.keras (and best.keras) atomically every epoch."""

        def __init__(self, run: runs.Run, monitor: str = "val_accuracy", best: float | None = None):
            super().__init__()
            self.run, self.monitor = run, monitor
            self.best = best
            self._batches = 0

        def on_epoch_begin(self, epoch, logs=None):
            self._batches = 0

        def on_train_batch_end(self, batch, logs=None):
            self._batches = batch + 1

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            folder = self.run.checkpoint_dir
            folder.mkdir(exist_ok=True)
            save_model_atomic(self.model, folder / "last.keras")
            value = logs.get(self.monitor)
            improved = value is not None and (self.best is None or value > self.best)
            if improved:
                self.best = float(value)
                save_model_atomic(self.model, folder / "best.keras", include_optimizer=False)
            # A stop mid-epoch saves a partly trained epoch; resume trains that epoch again.
            steps = (self.params or {}).get("steps")
            partial = bool(steps) and self._batches < steps
            runs.atomic_write_json(folder / "state.json", {"epoch": epoch + 1, "partial": partial, "best": self.best, "monitor": self.monitor})

    return RunRecorder, StopOnRequest, AtomicCheckpoint


def save_model_atomic(model, path: str | os.PathLike, include_optimizer: bool = True) -> Path:
    """Save a Keras model so that readers see the old file or the new one.

    Args:
        model: the model.
        path: the target `.keras` file.
        include_optimizer: keep Adam's state (needed to resume; it doubles
            the file size, so the final model and best checkpoint leave it out).
    """
    path = Path(path)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        (model if include_optimizer else _inference_copy(model)).save(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _inference_copy(model):
    """The same architecture and weights, with no optimizer attached."""
    import keras

    # clone_model would compile the copy with the same optimizer; from_config does not.
    copy = keras.Model.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def prepare_data(cfg: TrainConfig, image_size: int, log=print):
    """Discover, split and decode the training and validation images."""
    layout = data.discover(cfg.data)
    train_set, val_set = layout.train, layout.validation
    if cfg.val_data:
        val_set, _ = data.load_labelled_folder(cfg.val_data, layout.class_names)
    elif cfg.val_split:
        train_set, val_set = data.split(layout.train if layout.validation is None else layout.train, cfg.val_split, cfg.seed)
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
        if not len(ds):
            raise DatasetError(f"none of the {len(ds.skipped)} {name} images could be read; check them with `catdog data inspect {cfg.data}`")
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

    _supervise(run, runs_dir, start, lock, handle_signals, lambda request: _fit(run, cfg, spec, image_size, request, callbacks, verbose, log))
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
    """Continue a stopped, failed or killed run from checkpoint/last.keras.

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
    state = runs.read_json(run.checkpoint_dir / "state.json")
    if not state or not (run.checkpoint_dir / "last.keras").exists():
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

    resume_from = {"epoch": done, "best": state.get("best")}
    fit = lambda request: _fit(run, cfg, spec, cfg.image_size, request, callbacks, verbose, lambda m: print(m, file=stream, flush=True), resume_from)  # noqa: E731
    _supervise(run, Path(run.path).parent, start, lock, handle_signals, fit, resuming=True)
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
    import keras

    last = run.checkpoint_dir / "last.keras"
    try:
        model = keras.saving.load_model(last, compile=False)
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


def _fit(run, cfg, spec, image_size, request, extra_callbacks, verbose, log, resume_from: dict | None = None) -> None:
    import keras

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

    RunRecorder, StopOnRequest, AtomicCheckpoint = _keras_callbacks()
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
    model.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs, initial_epoch=initial_epoch, callbacks=callbacks, verbose=verbose, shuffle=False)
    if fine_tune and not stopper.stopped:
        with strategy.scope():  # the new optimizer's variables belong to the strategy too
            _fine_tune(model, spec, config["learning_rate"], callbacks, log)
        model.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs + fine_tune, initial_epoch=cfg.epochs, callbacks=callbacks, verbose=verbose, shuffle=False)
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

    from catdog.transfer import unfreeze_top

    unfrozen = unfreeze_top(model, spec.fine_tune_layers)
    callbacks[:] = [c for c in callbacks if not isinstance(c, keras.callbacks.LearningRateScheduler)]
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate / 10), loss="binary_crossentropy", metrics=["accuracy"])
    log(f"Fine-tuning: {unfrozen} backbone layers unfrozen, learning rate {learning_rate / 10:g}, {spec.fine_tune_epochs} more epochs")


def _restore(run: runs.Run, resume_from: dict, log):
    """The checkpointed model (with its optimizer state) and the metrics rows it covers."""
    import keras

    done = int(resume_from["epoch"])
    try:
        model = keras.saving.load_model(run.checkpoint_dir / "last.keras")
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a bad file
        raise RunError(f"cannot load checkpoint {str(run.checkpoint_dir / 'last.keras')!r}: {exc}; start a new training") from exc
    # Rows after the checkpoint (a killed or stopped epoch) are trained again, not kept twice.
    rows = [r for r in run.metrics() if r.get("epoch", 0) <= done]
    run.write_metrics(rows)
    for leftover in run.path.rglob(".tmp-*"):  # half-saved models of the killed process
        leftover.unlink(missing_ok=True)
    log(f"Resuming {run.id} after epoch {done} from {run.checkpoint_dir / 'last.keras'}")
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
