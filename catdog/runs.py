"""The run folder: create, read, list, and write its files atomically.

runs/<id>/
  config.json     every setting, the data path, class names, package versions
  status.json     state (running/stopped/finished/failed), pid, error, times
  metrics.jsonl   one JSON line per epoch
  progress.json   epoch, batch, batches, ETA
  model.keras     the trained model (replaced atomically)
  checkpoint/     state.json and the last-*.keras checkpoint it names, for resume
  accuracy.png, loss.png   the notebook's Matplotlib plots
  train.log       the training process's output (when started by the app)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catdog import config
from catdog.atomic import atomic_write_json, atomic_write_text  # noqa: F401 - re-exported for callers of runs.*
from catdog.errors import RunError, TrainingBusyError

STATES = ("queued", "running", "stopped", "finished", "failed")
ACTIVE_STATES = ("queued", "running")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
STOP_FILE = "STOP"
LOCK_NAME = "train.lock"
CHECKPOINT_STATE = "state.json"
LEGACY_CHECKPOINT = "last.keras"  # runs from before state.json named its checkpoint


def read_json(path: str | os.PathLike, default: Any = None) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def pid_alive(pid: int | None, started: float | None = None) -> bool:
    """True if a process with this pid exists, is not a zombie, and is the one recorded.

    Args:
        pid: the recorded process id.
        started: its recorded start time (`process_start_time`). A pid is
            reused by the system, so a process that started at another time
            is someone else. Records without it (hand-made, or older
            catdog) are trusted only for a process whose command line runs
            Python or catdog, never for init or an unrelated program.
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:  # a hand-edited status.json may hold anything
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except OSError:
        pass
    return _same_process(pid, started)


def process_start_time(pid: int | None = None) -> float | None:
    """When the process started (psutil's create_time), to tell it from a later one with the same pid."""
    try:
        import psutil

        return psutil.Process(pid or os.getpid()).create_time()
    except Exception:  # noqa: BLE001 - gone, no permission, or no psutil
        return None


def _same_process(pid: int, started: float | None) -> bool:
    if isinstance(started, (int, float)) and not isinstance(started, bool):
        now = process_start_time(pid)
        return now is None or abs(now - started) < 0.5
    try:
        import psutil

        cmdline = " ".join(psutil.Process(pid).cmdline()).lower()
    except Exception:  # noqa: BLE001 - cannot tell: trust the pid, as before
        return True
    return "python" in cmdline or "catdog" in cmdline


def new_run_id(preset: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{preset}"


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id) or run_id in (".", ".."):
        raise ValueError(f"run id must be letters, digits, '.', '_' or '-' (at most 100), got {run_id!r}")
    return run_id


@dataclass
class Run:
    """A run folder and what is written in it."""

    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def model_path(self) -> Path:
        return self.path / config.MODEL_FILENAME

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoint"

    def checkpoint_state(self) -> dict | None:
        """checkpoint/state.json: the epoch, partial, best, monitor and checkpoint file name."""
        state = read_json(self.checkpoint_dir / CHECKPOINT_STATE)
        return state if isinstance(state, dict) else None

    @property
    def checkpoint_path(self) -> Path:
        """The checkpoint state.json belongs to (checkpoint/last.keras for older runs)."""
        name = (self.checkpoint_state() or {}).get("checkpoint") or LEGACY_CHECKPOINT
        return self.checkpoint_dir / Path(str(name)).name

    @property
    def stop_file(self) -> Path:
        return self.path / STOP_FILE

    @property
    def log_path(self) -> Path:
        return self.path / "train.log"

    def config(self) -> dict:
        return _dict(read_json(self.path / "config.json", {}))

    def raw_status(self) -> dict:
        return _dict(read_json(self.path / "status.json", {}))

    def status(self) -> dict:
        """status.json, with a dead training process detected as failed (`stale`)."""
        status = dict(self.raw_status())
        if status.get("state") in ACTIVE_STATES and status.get("host", socket.gethostname()) == socket.gethostname():
            if not pid_alive(status.get("pid"), status.get("pid_started")):
                status.update(
                    state="failed",
                    stale=True,
                    error=status.get("error")
                    or f"the training process (pid {status.get('pid')}) ended without recording a result; it was probably killed",
                )
        status.setdefault("state", "unknown")
        return status

    def metrics(self) -> list[dict]:
        rows: list[dict] = []
        try:
            lines = (self.path / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
        except OSError:
            return rows
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and isinstance(row.get("epoch"), int):
                rows.append(row)
        return rows

    def progress(self) -> dict:
        return _dict(read_json(self.path / "progress.json", {}))

    def write_config(self, data: dict) -> None:
        atomic_write_json(self.path / "config.json", data)

    def write_status(self, state: str, **fields: Any) -> dict:
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {state!r}")
        status = self.raw_status()
        if "pid" in fields and "pid_started" not in fields:
            fields["pid_started"] = process_start_time(fields["pid"]) if isinstance(fields["pid"], int) else None
        status.update(fields, state=state, updated=time.time())
        status.setdefault("host", socket.gethostname())
        atomic_write_json(self.path / "status.json", status)
        return status

    def write_metrics(self, rows: list[dict]) -> None:
        atomic_write_text(self.path / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))

    def write_progress(self, data: dict) -> None:
        atomic_write_json(self.path / "progress.json", data)

    def request_stop(self) -> None:
        """Ask the training process to stop cleanly after the current batch."""
        atomic_write_text(self.stop_file, f"stop requested at {time.time()}\n")
        status = self.raw_status()
        pid = status.get("pid")
        # The STOP file is enough for a training in this process; a signal also
        # reaches a child that is still decoding images, before its first batch.
        # Only the recorded process is signalled, never a later one that reuses its pid:
        # without a recorded start time there is no telling (any Python process would pass).
        started = status.get("pid_started")
        known = isinstance(started, (int, float)) and not isinstance(started, bool)
        if status.get("state") in ACTIVE_STATES and pid != os.getpid() and known and pid_alive(pid, started):
            import signal

            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass

    def stop_requested(self) -> bool:
        return self.stop_file.exists()

    def clear_stop(self, before: float | None = None) -> None:
        """Withdraw a stop request made before `before` (any, when None).

        A resume calls this: the STOP file of the attempt it continues would
        otherwise end the new attempt after one batch. A request made after
        `before` (a Stop pressed while the resumed process starts) is kept.
        """
        try:
            if before is None or self.stop_file.stat().st_mtime <= before:
                self.stop_file.unlink()
        except FileNotFoundError:
            pass

    def best_val_accuracy(self) -> float | None:
        """The best epoch's validation accuracy (not necessarily the saved model's: see `model_val_accuracy`)."""
        values = [m["val_accuracy"] for m in self.metrics() if isinstance(m.get("val_accuracy"), (int, float))]
        return max(values) if values else None

    def model_val_accuracy(self) -> float | None:
        """The validation accuracy of the weights model.keras holds: with early stopping, the epoch of the
        lowest validation loss (the weights Keras restores: it monitors val_loss, first of equals), else
        the last epoch's (the best epoch's would overstate the saved model)."""
        rows = [m for m in self.metrics() if isinstance(m.get("val_accuracy"), (int, float))]
        if not rows:
            return None
        if self.config().get("early_stopping"):
            scored = [m for m in rows if isinstance(m.get("val_loss"), (int, float))]
            best = min(scored, key=lambda m: m["val_loss"]) if scored else max(rows, key=lambda m: m["val_accuracy"])
            return float(best["val_accuracy"])
        return float(rows[-1]["val_accuracy"])

    def duration(self, now: float | None = None) -> float | None:
        """Seconds from start to end (or to `now` while it runs); None when the start is unknown."""
        status = self.status()
        started = number(status.get("started")) or number(self.config().get("created"))
        if not started:
            return None
        ended = number(status.get("ended"))
        if ended is None and status.get("state") not in ("failed", "stopped", "finished"):
            ended = time.time() if now is None else now
        return (ended or number(status.get("updated")) or started) - started

    def summary(self) -> dict:
        """What a person compares runs by, as plain values (the pages and the CLI format them).

        Keys: id, preset, state, epochs_done, epochs, val_accuracy (the saved model's),
        best_val_accuracy (the best epoch's), created, duration (seconds), config (config.json) and path.
        """
        cfg = self.config()
        return {
            "id": self.id,
            "preset": cfg.get("model"),
            "state": self.status().get("state"),
            "epochs_done": len(self.metrics()),
            "epochs": cfg.get("epochs"),
            "val_accuracy": self.model_val_accuracy(),
            "best_val_accuracy": self.best_val_accuracy(),
            "created": number(cfg.get("created")),
            "duration": self.duration(),
            "config": cfg,
            "path": str(self.path),
        }


def create_run(runs_dir: str | os.PathLike | None = None, run_id: str | None = None, preset: str = config.DEFAULT_PRESET) -> Run:
    """Make a new, empty run folder. An existing run is never overwritten."""
    root = Path(runs_dir) if runs_dir else config.runs_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create runs folder {str(root)!r}: {exc.strerror or exc}; pick another --runs-dir") from exc
    if not os.access(root, os.W_OK):
        raise RunError(f"runs folder {str(root)!r} is not writable; pick another --runs-dir or fix its permissions")
    run_id = check_run_id(new_run_id(preset) if run_id is None else run_id)
    path = root / run_id
    try:
        path.mkdir()
    except FileExistsError:
        # catdog.jobs makes the folder and opens train.log before the child starts;
        # a Stop pressed meanwhile adds STOP, which the training then honours.
        if not path.is_dir() or not {p.name for p in path.iterdir()} <= {"train.log", STOP_FILE} or not (path / "train.log").exists():
            raise RunError(f"run {run_id!r} already exists in {str(root)!r}; choose another --run-id (or --resume it)") from None
    except OSError as exc:
        raise RunError(f"cannot create run folder {str(path)!r}: {exc.strerror or exc}") from exc
    return Run(path)


def open_run(path: str | os.PathLike) -> Run:
    """An existing run folder, given by path, by id under the runs folder, or as `bundled` (the bundled model's folder)."""
    if str(path) == "bundled" and not (config.runs_dir() / "bundled").is_dir():
        path = config.assets_dir() / "model"  # catdog.model_files.bundled_model_dir (which imports this module)
    candidate = Path(path).expanduser()
    if not candidate.is_dir() and not candidate.is_absolute():
        by_id = config.runs_dir() / str(path)
        if by_id.is_dir():
            candidate = by_id
    if not candidate.is_dir():
        raise RunError(f"run folder {str(path)!r} does not exist; list runs with `catdog runs`")
    if not (candidate / "config.json").exists() and not (candidate / config.MODEL_FILENAME).exists():
        raise RunError(f"{str(path)!r} is not a catdog run folder (no config.json or model.keras)")
    return Run(candidate.resolve())


def list_runs(runs_dir: str | os.PathLike | None = None) -> list[Run]:
    """Every run folder, newest first."""
    root = Path(runs_dir) if runs_dir else config.runs_dir()
    if not root.is_dir():
        return []
    runs = [Run(p) for p in root.iterdir() if p.is_dir() and (p / "config.json").exists()]
    return sorted(runs, key=lambda r: (number(r.config().get("created")) or 0.0, r.id), reverse=True)


def _dict(value: Any) -> dict:
    """A JSON object read from disk, or {} when the file held something else."""
    return value if isinstance(value, dict) else {}


def number(value: Any) -> float | None:
    """A float from a hand-edited or damaged JSON value; None when it is not a number."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def delete_run(run: Run) -> None:
    """Delete a run folder. A running training is refused."""
    if run.status().get("state") in ACTIVE_STATES:
        raise RunError(f"run {run.id!r} is still running; stop it first")
    shutil.rmtree(run.path)


# --- one training at a time --------------------------------------------------


def lock_path(runs_dir: str | os.PathLike | None = None) -> Path:
    return (Path(runs_dir) if runs_dir else config.runs_dir()) / LOCK_NAME


def read_lock(runs_dir: str | os.PathLike | None = None) -> dict | None:
    """The holder of the training lock, or None if free (stale locks are ignored)."""
    data = read_json(lock_path(runs_dir))
    if not data or not pid_alive(data.get("pid"), data.get("pid_started")):
        return None
    return data


def acquire_lock(run: Run, runs_dir: str | os.PathLike | None = None, pid: int | None = None) -> None:
    """Take the machine-wide training lock for `run`, or raise TrainingBusyError.

    A lock whose process is gone is stale and taken over. The check and the
    write happen under an flock on a guard file, so processes that find the
    same stale lock cannot both take it; the kernel drops an flock when its
    holder dies, so the guard itself never goes stale.
    """
    path = lock_path(runs_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock_guard(path):
        holder = read_json(path)
        if holder and pid_alive(holder.get("pid"), holder.get("pid_started")):
            raise TrainingBusyError(
                f"another training is running (run {Path(holder.get('run', '?')).name}, pid {holder['pid']}); "
                "wait for it to finish or stop it"
            )
        atomic_write_text(path, json.dumps(lock_record(run, pid)))


def lock_record(run: Run, pid: int | None = None) -> dict:
    """What train.lock holds: the holder's pid and start time, its run, and since when."""
    pid = pid or os.getpid()
    return {"pid": pid, "pid_started": process_start_time(pid), "run": str(run.path), "since": time.time()}


@contextmanager
def _lock_guard(path: Path):
    import fcntl

    fd = os.open(path.with_name(f".{path.name}.guard"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def release_lock(runs_dir: str | os.PathLike | None = None, pid: int | None = None) -> None:
    path = lock_path(runs_dir)
    if not path.parent.is_dir():
        return
    with _lock_guard(path):
        data = read_json(path)
        if data and data.get("pid") == (pid or os.getpid()):
            path.unlink(missing_ok=True)


def remove_stale_checkpoints(run: Run) -> None:
    """Delete checkpoints state.json no longer names (left by a save or a kill before it)."""
    keep = run.checkpoint_path
    for path in run.checkpoint_dir.glob("last*.keras"):
        if path != keep:
            path.unlink(missing_ok=True)
