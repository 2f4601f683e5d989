"""Steps every training shares, whether the whole network trains (fit.py) or only a frozen backbone's head (frozen.py).

    make_callbacks   the run's Keras callbacks: schedule, recorder, stop, checkpoint, early stopping
    begin_finish     mark the run's parts as being replaced (config.json's `unit`)
    save_model       model.keras atomically, then model.onnx
    end_finish       record the sha256 of the model and the check: the run is whole again
"""

from __future__ import annotations

from typing import Callable

from catdog import runs
from catdog.atomic import save_model_atomic
from catdog.training.recipe import cosine_learning_rate

Log = Callable[[str], None]


def make_callbacks(job, steps: int, rows: list[dict], best, request) -> list:
    """The run's callbacks: learning-rate schedule, recorder, stop, checkpoint, early stopping, the caller's."""
    import keras

    from catdog.callbacks import AtomicCheckpoint, RunRecorder, SeedEachEpoch, StopOnRequest

    settings = job.settings
    callbacks: list = []
    if settings.lr_schedule == "cosine":  # first, so the epoch's learning rate is in the logs the recorder writes
        schedule = lambda epoch, lr: cosine_learning_rate(epoch, settings.epochs, settings.learning_rate)  # noqa: E731
        callbacks.append(keras.callbacks.LearningRateScheduler(schedule))
    recorder = RunRecorder(job.run, settings.epochs, steps, initial_rows=rows, log=job.log)
    callbacks += [SeedEachEpoch(settings.seed), recorder, StopOnRequest(request)]
    if settings.checkpoint:
        callbacks.append(AtomicCheckpoint(job.run, best=best))
    if settings.early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=settings.early_stopping, restore_best_weights=True, verbose=1)
        )
    return callbacks + list(job.callbacks)


def begin_finish(run: runs.Run) -> None:
    """Mark the run's parts as being replaced: until `end_finish`, no reader takes its model, calibration and check as one."""
    run.write_config({**run.config(), "unit": {"state": "finishing"}})


def end_finish(run: runs.Run) -> None:
    """Record the sha256 of the model and the check just written (config.json's `unit`): the run is whole again."""
    from catdog.model_files import unit_record

    run.write_config({**run.config(), "unit": unit_record(run.model_path)})


def save_model(run: runs.Run, model, log: Log = print) -> None:
    """model.keras (atomically, without the optimizer), then model.onnx for ONNX Runtime (a failure there only warns)."""
    from catdog.onnx_runtime import write_onnx

    save_model_atomic(model, run.model_path, include_optimizer=False)
    write_onnx(run.path, logger=log)
