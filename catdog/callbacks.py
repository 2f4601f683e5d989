"""Keras callbacks that write a run folder: progress and metrics, stop requests, checkpoints.

Imported lazily by `catdog.training.fit` (this module imports Keras).
"""

from __future__ import annotations

import secrets
import time
from typing import Protocol, Sequence

import keras
import numpy as np

from catdog import runs
from catdog.atomic import atomic_write_json, save_model_atomic


class StopSignal(Protocol):
    """Anything that says whether a stop was requested (`catdog.training.supervise.StopRequested`)."""

    def is_set(self) -> bool: ...


# The work after the last epoch (calibration, model.keras, model.onnx) took 7 to 8 times the
# between-epochs time (plots and the checkpoint save) in warm starts on 300 photos (2 AMD EPYC cores).
FINISH_PER_GAP = 7.0


class RunRecorder(keras.callbacks.Callback):
    """Writes progress.json per batch and metrics.jsonl + plots per epoch.

    progress.json's `overall` is the fraction of the whole run done (one bar that
    never slides back), and its ETA leaves out the first batch of the process,
    which traces and compiles the graph and takes many batches' time: the first
    epoch is timed from the end of its first batch, and the process's first
    epoch counts without that overhead once later epochs are timed.

    An epoch's cost in the ETA is its whole cycle: its batches and validation, plus
    the time between its end and the next epoch's start (plots, the checkpoint save),
    which on a few hundred photos is a large share. The ETA ends with
    `finish_seconds`, the work after the last epoch (calibration, saving, export);
    by default `FINISH_PER_GAP` times that between-epochs time, as measured.
    """

    def __init__(
        self,
        run: runs.Run,
        epochs: int,
        steps: int,
        initial_rows: Sequence[dict] = (),
        min_interval: float = 0.5,
        log=None,
        finish_seconds: float | None = None,
    ):
        super().__init__()
        self.log = log
        self.run, self.epochs, self.steps = run, epochs, steps
        self.rows = list(initial_rows)
        self.min_interval = min_interval
        self.finish_seconds = finish_seconds
        self._last_write = 0.0
        self._epoch_start = time.time()
        self._epoch = 0
        self._first_batch_end: float | None = None  # this epoch's first batch, timed apart (graph tracing)
        self._session_epochs: list[float] = []  # seconds of epochs trained by this process, overhead removed
        self._overhead = 0.0  # the first batch's extra time, left out of the estimates
        self._epoch_end: float | None = None  # when the last full epoch ended (its after-work runs until the next begins)
        self._gaps: list[float] = []  # seconds between an epoch's end and the next epoch's start

    def on_epoch_begin(self, epoch, logs=None):
        now = time.time()
        if self._epoch_end is not None:
            self._gaps.append(max(0.0, now - self._epoch_end))
        self._epoch, self._epoch_start, self._epoch_end = epoch, now, None
        self._first_batch_end = None
        self._write_progress(0, "train", force=True)

    def on_train_end(self, logs=None):
        self._write_progress(self.steps, "finishing", force=True)

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            self._first_batch_end = time.time()
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
        self._record_epoch_time(row["seconds"], partial=bool(row.get("partial")))
        if not row.get("partial"):
            self._epoch_end = time.time()
        self.run.write_metrics(self.rows)
        self._write_progress(self.steps, "epoch_end", force=True)
        if self.log is not None:
            shown = " - ".join(f"{k}: {row[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if row[k] is not None)
            self.log(f"epoch {epoch + 1}/{self.epochs} - {row['seconds']:.1f}s - {shown}")
        from catdog.plots import save_notebook_plots

        save_notebook_plots(self.run)

    def _record_epoch_time(self, seconds: float, partial: bool) -> None:
        """Remember this epoch's time; the process's first epoch without its first batch's tracing overhead."""
        if partial:
            return
        if not self._session_epochs and self._first_batch_end is not None and self.steps > 1:
            first = self._first_batch_end - self._epoch_start
            rest = (seconds - first) / (self.steps - 1)  # a typical batch (validation included, a little)
            self._overhead = max(0.0, first - rest)
        self._session_epochs.append(max(0.0, seconds - (self._overhead if not self._session_epochs else 0.0)))

    def _finish(self) -> float:
        """Seconds of work after the last epoch: given, or estimated from the between-epochs time."""
        return float(self.finish_seconds) if self.finish_seconds is not None else FINISH_PER_GAP * self._gap()

    def _gap(self) -> float:
        """The mean time between an epoch's end and the next one's start, so far (0 before one is measured)."""
        return sum(self._gaps) / len(self._gaps) if self._gaps else 0.0

    def _per_epoch(self, batch: int, elapsed: float, now: float) -> float | None:
        """Seconds one epoch takes: from the epochs done, else from this epoch's batches after the first."""
        done = self._session_epochs or [r["seconds"] for r in self.rows if not r.get("partial")]
        if done:
            return sum(done) / len(done)
        if self._first_batch_end is not None and batch > 1:
            return (now - self._first_batch_end) / (batch - 1) * self.steps
        if self._first_batch_end is not None:
            return None  # only the first (tracing) batch is timed: too early to say
        return elapsed / batch * self.steps if batch else None

    def _left_in_epoch(self, batch: int, elapsed: float, per_epoch: float) -> float:
        """Seconds until this epoch's batches and validation end."""
        if self._session_epochs or any(not r.get("partial") for r in self.rows):
            overhead = self._overhead if not self._session_epochs and self._first_batch_end else 0.0
            return max(0.0, per_epoch - elapsed + overhead)
        if self._first_batch_end is not None:
            return per_epoch / self.steps * (self.steps - batch)
        return elapsed / batch * (self.steps - batch) if batch else 0.0

    def _write_progress(self, batch: int, phase: str, force: bool = False):
        now = time.time()
        if not force and now - self._last_write < self.min_interval and batch < self.steps:
            return
        self._last_write = now
        elapsed = now - self._epoch_start
        per_epoch = self._per_epoch(batch, elapsed, now)
        remaining_epochs = self.epochs - self._epoch - 1
        eta = None
        if phase == "finishing":
            eta = round(self._finish(), 1)
        elif per_epoch is not None:
            in_epoch = self._gap() + (0.0 if phase == "epoch_end" else self._left_in_epoch(batch, elapsed, per_epoch))
            eta = round(in_epoch + remaining_epochs * (per_epoch + self._gap()) + self._finish(), 1)
        finished = phase in ("validate", "epoch_end")
        done = min(1.0, (self._epoch + (1.0 if finished else batch / max(1, self.steps))) / max(1, self.epochs))
        if phase == "finishing":
            done = 1.0  # every epoch that will run has run (early stopping may end before `epochs`)
        self.run.write_progress(
            {
                "epoch": self._epoch + 1,
                "epochs": self.epochs,
                "batch": batch,
                "batches": self.steps,
                "phase": phase,
                "overall": round(done, 4),
                "elapsed_epoch": round(elapsed, 2),
                "eta_seconds": eta,
                "updated": now,
            }
        )


class StopOnRequest(keras.callbacks.Callback):
    """Ends training after the current batch when a stop was requested."""

    def __init__(self, request: StopSignal):
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
    """Saves the checkpoint (and best.keras) every epoch; state.json names the checkpoint it belongs to.

    The model goes to a new file (`last-<epoch>-<random>.keras`), then state.json
    is replaced atomically to point at it, then the previous checkpoint is
    deleted. A kill at any moment leaves a state.json and the checkpoint it
    describes, so a resumed run never trains an epoch twice.
    """

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
        name = f"last-{epoch + 1:04d}-{secrets.token_hex(4)}.keras"
        save_model_atomic(self.model, folder / name)
        value = logs.get(self.monitor)
        if value is not None and (self.best is None or value > self.best):
            self.best = float(value)
            save_model_atomic(self.model, folder / "best.keras", include_optimizer=False)
        # A stop mid-epoch saves a partly trained epoch; resume trains that epoch again.
        steps = (self.params or {}).get("steps")
        partial = bool(steps) and self._batches < steps
        state = {"epoch": epoch + 1, "partial": partial, "best": self.best, "monitor": self.monitor, "checkpoint": name}
        atomic_write_json(folder / runs.CHECKPOINT_STATE, state)
        runs.remove_stale_checkpoints(self.run)


class SeedEachEpoch(keras.callbacks.Callback):
    """Seeds the model's random layers (augmentation, dropout) from the seed and the epoch number at each epoch's start.

    Their generators would otherwise go on from wherever this process's earlier
    epochs left them, so a resumed run's epoch N would draw other
    augmentations than an uninterrupted run's epoch N (the data order is
    seeded the same way: `catdog.data.epoch_order`).
    """

    def __init__(self, seed: int):
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch, logs=None):
        states = [v for v in self.model.variables if v.path.endswith("seed_generator_state")]
        for i, state in enumerate(states):  # in layer order, the same in a rebuilt or reloaded model
            value = int(np.random.default_rng([self.seed, epoch, i]).integers(1, 2**31 - 1))
            state.assign(np.array([value, 0], dtype=state.dtype))
