"""`train`: one training, told top to bottom.

    settings = resolve(cfg)                         # what exactly is trained (config.py)
    prepared = prepare_data(settings)               # decoded train / validation / calibration photos
    model = new_model(settings)                     # the preset, warm-started when asked
    score_before(run, model, prepared, ...)         # a warm start: the starting model on the validation photos
    model, stopped = fit_epochs(job, model, ...)    # Keras fit with the run's callbacks, phase by phase
    finish(run, model, prepared)                    # calibrate -> open-set check -> save model.keras and model.onnx -> status

`resume` (resume.py) runs the same story from a checkpoint, and its recovery of
a run killed after its last epoch ends with the same `finish`.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import IO, Any, Callable, Sequence

from catdog import data, runs
from catdog.compare import VALIDATION_FILE, write_validation_photos
from catdog.distribute import global_batch_size, make_strategy, worker_shard
from catdog.models import fuse_batch_norm
from catdog.training.config import Settings, TrainConfig, resolve
from catdog.training.data_prep import PreparedData, find_layouts, prepare_data
from catdog.training.progressive import progressive_phases, redecode, resized
from catdog.training.recipe import build_for_recipe
from catdog.training.steps import begin_finish, end_finish, make_callbacks, save_model  # noqa: F401 - also fit's API
from catdog.training.supervise import StopRequested, supervise
from catdog.training.warm_start import copy_source_weights, load_source, source_temperature

Log = Callable[[str], None]


def logger(stream: IO[str] | None) -> Log:
    """A `log(message)` that prints one line to `stream` (default stdout) at once."""
    stream = stream or sys.stdout
    return lambda message: print(message, file=stream, flush=True)


@dataclass
class FitJob:
    """What `fit` trains: the run, its settings, and how `train`/`resume` were called.

    Attributes:
        restore: when resuming, returns (model, epochs done, metrics rows, best
            value) from the run's checkpoint; None for a new training.
    """

    run: runs.Run
    settings: Settings
    callbacks: Sequence = ()
    verbose: int | str = "auto"
    log: Log = print
    restore: Callable[[], tuple[Any, int, list[dict], Any]] | None = None
    layouts: Sequence[data.DatasetLayout] | None = None  # the folders, when already found
    warm_source: Any = None  # the loaded --init-from model, when already loaded


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
        CatdogError or ValueError: bad settings or data. Settings, --init-from and
            the folders are checked before a run folder exists; a later failure
            marks the run failed.
    """
    settings = resolve(cfg)
    if settings.spec.frozen_features:
        from catdog.training.frozen import refuse_unsupported

        refuse_unsupported(settings)
    layouts = find_layouts(settings)
    source = warm_start_source(settings)
    run = runs.create_run(runs_dir, run_id, settings.model)

    def start() -> None:
        run.write_config(settings.record())
        run.write_status("queued", pid=os.getpid(), started=time.time())

    job = FitJob(run, settings, callbacks, verbose, logger(stream), layouts=layouts, warm_source=source)
    supervise(run, runs_dir, start, lambda request: fit(job, request), lock, handle_signals)
    return run


def fit(job: FitJob, request: StopRequested) -> None:
    """Prepare the data, build (or restore) the model, fit it, and finish the run."""
    import keras

    run, settings, log = job.run, job.settings, job.log
    if settings.spec.frozen_features:  # a frozen pretrained backbone: features once, then the head (frozen.py)
        from catdog.training.frozen import fit_frozen

        return fit_frozen(job, request)
    keras.utils.set_random_seed(settings.seed)
    prepared = prepare_data(settings, log, job.layouts)
    run.write_config({**run.config(), **prepared.record(), "fused_batch_norm": settings.fused_batch_norm})
    strategy = make_strategy(settings.strategy, stop=request.is_set)  # a STOP file ends a wait for a missing peer too
    with strategy.scope():  # variables (model and optimizer) are created under the strategy's scope
        if job.restore is None:
            model, initial_epoch, rows, best = new_model(settings, log, job.warm_source), 0, [], None
        else:
            model, initial_epoch, rows, best = job.restore()
        prepare_for_speed(model, settings)
    if not (run.path / VALIDATION_FILE).exists():  # which photos "Use this model for Predict" compares on
        write_validation_photos(run, prepared.validation.paths, prepared.validation.labels)
    if job.restore is None and settings.init_from:
        score_before(run, model, prepared, settings, strategy, log)
    model, stopped = fit_epochs(job, model, prepared, strategy, request, initial_epoch, rows, best)
    finish(run, model, prepared, log, state="stopped" if stopped else "finished")


def score_before(run: runs.Run, model, prepared: PreparedData, settings: Settings, strategy, log: Log = print) -> dict:
    """The starting model's accuracy and loss on the run's validation photos, before the first epoch.

    Recorded in config.json as `before`: the epoch-0 point of the curves and the
    "before" of "before -> after", on the very photos every epoch is validated on.
    """
    validation = prepared.validation
    size = first_size(settings)
    if size != settings.image_size:
        validation = redecode(validation, size, settings.cache)
    batch_size = global_batch_size(settings.batch_size, strategy)
    scores = model.evaluate(data.make_tf_dataset(validation, batch_size, strategy=strategy), verbose=0, return_dict=True)
    before = {"val_accuracy": round(float(scores["accuracy"]), 6), "val_loss": round(float(scores["loss"]), 6),
              "n": len(prepared.validation), "model": settings.init_from}
    run.write_config({**run.config(), "before": before})
    log(f"Before training: the starting model scores {before['val_accuracy']:.1%} (loss {before['val_loss']:.4f}) "
        f"on the {before['n']:,} validation photos")
    return before


def first_size(settings: Settings) -> int:
    """The input size of the first epoch (smaller with progressive resizing)."""
    return progressive_phases(settings.epochs, settings.image_size, settings.progressive_size)[0][0]


def warm_start_source(settings: Settings):
    """The `init_from` model, loaded and checked against the preset (None without one).

    Called before the run folder exists, so a bad --init-from leaves nothing behind.

    Raises:
        RunError: it cannot be loaded, or its network does not fit the preset.
    """
    from catdog.models import build_model

    if not settings.init_from:
        return None
    source = load_source(settings.init_from)
    target = build_model(settings.model, first_size(settings), precision=settings.precision, compile=False)
    copy_source_weights(source, target, settings.init_from)
    return source


def new_model(settings: Settings, log: Log = print, warm_source=None):
    """The preset at the first phase's size, compiled with the run's recipe, warm-started when asked."""
    model = build_for_recipe(settings, first_size(settings))
    if settings.init_from:
        copy_source_weights(warm_source or load_source(settings.init_from), model, settings.init_from)
        log(f"Starting from the weights of {settings.init_from}")
    return model


def prepare_for_speed(model, settings: Settings) -> None:
    """XLA when asked, and fused BatchNorm where it measured faster (same math; saved files keep plain layers)."""
    if settings.jit_compile is not None:
        model.jit_compile = settings.jit_compile
    if settings.fused_batch_norm:
        fuse_batch_norm(model)


def fit_epochs(job: FitJob, model, prepared: PreparedData, strategy, request, initial_epoch: int, rows: list[dict], best):
    """Keras `fit`, one call per progressive-resizing phase; returns (model, stopped)."""
    from catdog.callbacks import StopOnRequest

    settings, log = job.settings, job.log
    batch_size = global_batch_size(settings.batch_size, strategy)
    if strategy.num_replicas_in_sync > 1:
        log(f"Strategy {type(strategy).__name__}: {strategy.num_replicas_in_sync} replicas, global batch {batch_size}")
    steps = data.steps_per_epoch(len(prepared.train) * worker_shard(settings.strategy)[1], batch_size)  # per-worker batches of a share
    callbacks = make_callbacks(job, steps, rows, best, request)
    stopper = next(c for c in callbacks if isinstance(c, StopOnRequest))
    job.run.write_status("running", pid=os.getpid())
    bn = "fused BatchNorm" if settings.fused_batch_norm else "Keras BatchNorm"
    log(f"Training {settings.model} ({model.count_params():,} parameters, {settings.precision}, {bn}) "
        f"for {settings.epochs} epochs, batch {settings.batch_size}")
    for size, start, end in progressive_phases(settings.epochs, settings.image_size, settings.progressive_size):
        if end <= initial_epoch or stopper.stopped:
            continue
        if model.input_shape[1] != size:
            log(f"Progressive resizing: epochs {start + 1}-{end} at {size}x{size}")
            with strategy.scope():
                model = resized(model, size, settings)
        first = max(start, initial_epoch)
        train_ds, val_ds = datasets(prepared, size, batch_size, settings, strategy, (first, end))
        model.fit(train_ds, validation_data=val_ds, epochs=end, initial_epoch=first, steps_per_epoch=steps,
                  callbacks=callbacks, verbose=job.verbose, shuffle=False)
    return model, stopper.stopped


def datasets(prepared: PreparedData, size: int, batch_size: int, settings: Settings, strategy, epochs: tuple[int, int]):
    """(training, validation) tf.data pipelines at `size` (decoded again when it is not the prepared size).

    The training pipeline holds `epochs` (first, end), each epoch in an order
    from the seed and its number, so a resumed epoch sees the batches it would have seen.
    """
    train, validation = prepared.train, prepared.validation
    if size != settings.image_size:
        train, validation = (redecode(d, size, settings.cache) for d in (train, validation))
    return (
        data.make_tf_dataset(train, batch_size, shuffle=True, seed=settings.seed, strategy=strategy, epochs=epochs),
        data.make_tf_dataset(validation, batch_size, strategy=strategy),
    )


def finish(run: runs.Run, model, prepared: PreparedData, log: Log = print, state: str = "finished", **status) -> None:
    """The end of every training, normal or recovered: calibrate, fit the open-set check, save the model files, record the status.

    The check is written before the model files, so the model.onnx written
    after it computes its score (its record pins the check's sha256).
    """
    begin_finish(run)
    calibrate_run(run, model, prepared, log)
    fit_openset_run(run, model, prepared, log)
    save_model(run, model, log)
    end_finish(run)
    rows = run.metrics()
    run.write_status(state, ended=time.time(), epochs_done=len(rows), error=None, traceback=None, **status)
    log(f"Run {state} after {len(rows)} epoch(s); model saved to {run.model_path}")


def calibrate_run(run: runs.Run, model, prepared: PreparedData, log: Log = print) -> None:
    """Fit the confidence calibration on the held-out photos and record it in config.json (none held out: nothing)."""
    from catdog.calibration import calibrate

    if prepared.calibration is None:
        return
    start, start_is_calibrated = source_temperature(run.config().get("init_from"))
    record = calibrate(model, prepared.calibration, prepared.validation, log, start=start, start_is_calibrated=start_is_calibrated)
    run.write_config({**run.config(), "calibration": record})


def fit_openset_run(run: runs.Run, model, prepared: PreparedData, log: Log = print) -> None:
    """Fit the "not a cat or dog" check on the run's own photos (and its negatives); write openset.npz and its record."""
    from catdog import openset

    config = run.config()
    check = openset.fit_for_training(model, prepared, config.get("negatives") or (), seed=int(config.get("seed") or 0), log=log)
    openset.path_for(run.model_path).unlink(missing_ok=True)  # a check of an earlier model never outlives it
    if check is not None:
        check.save(openset.path_for(run.model_path))
    run.write_config({**run.config(), "openset": check.summary() if check is not None else None})


