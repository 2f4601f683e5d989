"""What watches a training: the machine-wide lock, SIGINT/SIGTERM, stop requests, and a failed run's status."""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from pathlib import Path
from typing import Callable

from catdog import config as defaults
from catdog import runs
from catdog.errors import CatdogError, RunError, TrainingBusyError
from catdog.errors import write_error as clear_write_error


class StopRequested:
    """Set by SIGINT/SIGTERM or the run's STOP file; read by `catdog.callbacks.StopOnRequest`."""

    def __init__(self, run: runs.Run):
        self.run = run
        self.event = threading.Event()

    def __call__(self, signum=None, frame=None) -> None:
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set() or self.run.stop_requested()


def supervise(
    run: runs.Run,
    runs_dir,
    start: Callable[[], None],
    work: Callable[[StopRequested], None],
    lock: bool = True,
    handle_signals: bool = True,
    resuming: bool = False,
) -> None:
    """Run `start()` and `work(request)` holding the lock and signal handlers; mark the run failed if they raise.

    The lock is taken before `start` touches the run: a second resume of the
    same run is refused without marking the run that is training as failed,
    and a refused new training leaves no run folder behind.
    """
    root = Path(runs_dir) if runs_dir else None
    if lock:
        _acquire(run, root, resuming)
    request = StopRequested(run)
    old_handlers: dict = {}
    try:
        start()
        if handle_signals and threading.current_thread() is threading.main_thread():
            old_handlers = {sig: signal.signal(sig, request) for sig in (signal.SIGINT, signal.SIGTERM)}
        work(request)
    except BaseException as exc:
        _fail(run, exc)
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        if lock:
            runs.release_lock(root)


def _acquire(run: runs.Run, root: Path | None, resuming: bool) -> None:
    try:
        runs.acquire_lock(run, root)
    except TrainingBusyError:
        if not resuming:
            remove_unstarted(run)  # refused before it began: leave nothing behind
        raise


def _fail(run: runs.Run, exc: BaseException) -> None:
    """Mark the run failed with a clear message, then raise (a write error as a clear RunError)."""
    clear = write_error(exc, run)
    shown = clear or exc
    message = str(shown) if isinstance(shown, (CatdogError, ValueError)) else f"{type(exc).__name__}: {exc}"
    if isinstance(exc, KeyboardInterrupt):
        message = "interrupted"
    try:
        run.write_status("failed", error=message, ended=time.time(), traceback=traceback.format_exc(limit=20))
    except OSError:
        pass  # a full or read-only disk: the error below still says what happened
    if clear is not None:
        raise clear from exc
    raise exc


def remove_unstarted(run: runs.Run) -> None:
    """Remove a new run folder that nothing was written to (only a launcher's train.log, if any)."""
    try:
        if {p.name for p in run.path.iterdir()} <= {"train.log"}:
            run.log_path.unlink(missing_ok=True)
            run.path.rmdir()
    except OSError:
        pass


def write_error(exc: BaseException, run: runs.Run) -> RunError | None:
    """A clear RunError for a failed write to the run folder or the decode cache (None for other errors).

    The wording is everyone's (`catdog.errors.write_error`); what to do next is training's own.
    """
    if not isinstance(exc, OSError):
        return None
    where = exc.filename or run.path
    if _is_within(where, defaults.cache_dir()):
        then = "(it is the decode cache: set CATDOG_CACHE_DIR to a larger disk, or use --cache memory), then start the training again"
    elif (run.checkpoint_dir / "state.json").exists():
        then = f"then continue with `catdog train --resume {run.path}` (or pick another --runs-dir)"
    else:
        then = "then start the training again (no epoch was checkpointed yet), or pick another --runs-dir"
    return clear_write_error(exc, where, then, cls=RunError)


def _is_within(path, folder: Path) -> bool:
    try:
        Path(os.path.abspath(path)).relative_to(os.path.abspath(folder))
        return True
    except (ValueError, TypeError):
        return False
