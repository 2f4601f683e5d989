"""`resume`: continue a stopped, failed or killed run from its checkpoint, or finish one that trained every epoch."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import IO, Sequence

from catdog import runs
from catdog.errors import RunError
from catdog.models import load_keras
from catdog.training.config import Settings, settings_from_record
from catdog.training.data_prep import prepare_data
from catdog.training.fit import FitJob, Log, finish, fit, logger
from catdog.training.supervise import supervise


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
    before it was finished (its model, model.onnx or calibration not written)
    is finished exactly as a training that was never killed.

    Args:
        run: the run (folder, path or id).
        epochs: a new total number of epochs (default: the run's own).
        callbacks, verbose, stream, lock, handle_signals: as for `train`.
        requested_at: when the resume was asked for (default: now); a stop
            requested later is honoured, an older one is withdrawn.

    Raises:
        RunError: the run is still running, has no checkpoint, or is already complete.
    """
    requested_at = time.time() if requested_at is None else requested_at
    run = run if isinstance(run, runs.Run) else runs.open_run(run)
    refuse_frozen(run)
    state = _checkpoint_state(run)
    settings = settings_from_record(run.config(), epochs)
    done = int(state["epoch"]) - (1 if state.get("partial") else 0)
    log = logger(stream)
    if done >= settings.epochs and run.status().get("state") != "finished":
        supervise(run, run.path.parent, _restart(run, settings, requested_at, done), lambda request: recover(run, settings, log),
                  lock, handle_signals, resuming=True)
        return run
    if done >= settings.epochs:
        raise RunError(f"run {run.id!r} already has all {settings.epochs} epochs; pass --epochs N with N > {done} to train further")
    job = FitJob(run, settings, callbacks, verbose, log, restore=lambda: restore_checkpoint(run, done, state.get("best"), log))
    supervise(run, run.path.parent, _restart(run, settings, requested_at, done), lambda request: fit(job, request),
              lock, handle_signals, resuming=True)
    return run


def refuse_frozen(run: runs.Run) -> None:
    """A frozen backbone's run (lite0) keeps no checkpoint: its head trains in seconds from the cached features.

    Raises:
        RunError: saying to start a new training on the same folders instead.
    """
    from catdog.models import PRESETS

    spec = PRESETS.get(str(run.config().get("model")))
    if spec is not None and spec.frozen_features:
        raise RunError(f"run {run.id!r} is a {spec.name} run: it keeps no checkpoint, because its head trains in seconds from "
                       "the features cached on the first training; start a new training on the same folders instead")


def _checkpoint_state(run: runs.Run) -> dict:
    """The run's checkpoint/state.json, when it may be resumed.

    Raises:
        RunError: the run is still running, or has no checkpoint.
    """
    status = run.status()
    if status.get("state") in runs.ACTIVE_STATES:
        raise RunError(f"run {run.id!r} is still running (pid {status.get('pid')}); stop it before resuming")
    state = run.checkpoint_state()
    if not state or not run.checkpoint_path.exists():
        raise RunError(f"run {run.id!r} has no checkpoint to resume from (no epoch finished, or --no-checkpoint); start a new training")
    return state


def _restart(run: runs.Run, settings: Settings, requested_at: float, done: int):
    """The `start` step of a resumed run: withdraw the old stop request, record the new total, mark it queued."""

    def start() -> None:
        run.clear_stop(before=requested_at)
        run.write_config({**run.config(), "epochs": settings.epochs})
        run.write_status("queued", pid=os.getpid(), resumed=time.time(), resumed_from_epoch=done, error=None, traceback=None, ended=None)

    return start


def remove_leftovers(run: runs.Run) -> None:
    """Delete half-written files of a killed process (`.tmp-*`: models, model.onnx, JSON)."""
    for leftover in run.path.rglob(".tmp-*"):
        if leftover.is_file():
            leftover.unlink(missing_ok=True)


def restore_checkpoint(run: runs.Run, done: int, best, log: Log = print):
    """The checkpointed model (with its optimizer state), the epochs done, the metrics rows they cover, and the best value."""
    checkpoint = run.checkpoint_path
    try:
        model = load_keras(checkpoint, compile=True)  # with its optimizer state
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a bad file
        raise RunError(f"cannot load checkpoint {str(checkpoint)!r}: {exc}; start a new training") from exc
    # Rows after the checkpoint (a killed or stopped epoch) are trained again, not kept twice.
    rows = [r for r in run.metrics() if r.get("epoch", 0) <= done]
    run.write_metrics(rows)
    remove_leftovers(run)
    runs.remove_stale_checkpoints(run)  # saved by the killed process after its last state.json
    log(f"Resuming {run.id} after epoch {done} from {checkpoint}")
    return model, done, rows, best


def _latest_model(run: runs.Run) -> Path:
    """model.keras when it was saved after the last checkpoint (it may hold early stopping's best weights), else the checkpoint."""
    try:
        if run.model_path.stat().st_mtime >= run.checkpoint_path.stat().st_mtime:
            return run.model_path
    except OSError:
        pass  # no model.keras yet
    return run.checkpoint_path


def recover(run: runs.Run, settings: Settings, log: Log = print) -> None:
    """Finish a run that trained every epoch but was killed before it was finished.

    The model is the saved model.keras when it was written (a kill while
    model.onnx was written), else the last checkpoint; then the run ends as a
    normal training does (`finish`: calibration, model.keras, model.onnx, status).
    """
    remove_leftovers(run)
    source = _latest_model(run)
    try:
        model = load_keras(source, compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a bad file
        raise RunError(f"cannot load {str(source)!r}: {exc}; start a new training") from exc
    log(f"Run {run.id} had trained all its epochs but was killed before it was finished; finishing it from {Path(source).name}")
    prepared = prepare_data(settings, log)
    finish(run, model, prepared, log, recovered_from_checkpoint=True)
