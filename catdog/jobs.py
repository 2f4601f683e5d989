"""Background trainings: `python -m catdog train` as a detached child process.

The app never trains inside its own process: a Streamlit rerun, a page switch
or a closed tab would kill or leak it. `start_training` launches the same CLI a
user would type, in its own session, with its output in `runs/<id>/train.log`.
The run folder stays the single source of truth, so any browser session (or the
CLI) can find the job again through the machine-wide training lock.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from catdog import config, data, runs
from catdog.errors import RunError, TrainingBusyError
from catdog.training import TrainConfig, config_flags

LOG_TAIL_LINES = 25
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# TensorFlow's start-up chatter (absl INFO/WARNING lines) would push the real error out of the tail.
_NOISE = re.compile(r"^([IW]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl::InitializeLog)")


@dataclass
class JobStatus:
    """What a page needs to know about a training started in the background.

    Attributes:
        run: the run folder.
        state: starting (child still loading), queued, running, stopped,
            finished or failed.
        alive: whether the training process is still running.
        error: why it failed, when it failed.
        log_tail: the last lines of train.log.
    """

    run: runs.Run
    state: str
    alive: bool
    error: str | None = None
    log_tail: str = ""

    @property
    def active(self) -> bool:
        return self.state in ("starting", *runs.ACTIVE_STATES)


def train_command(cfg: TrainConfig, run_id: str, runs_dir: str | os.PathLike) -> list[str]:
    """The `python -m catdog train …` command line for these settings (every TrainConfig field)."""
    cmd = [sys.executable, "-m", "catdog", "train", *config_flags(cfg)]
    # The launcher already holds the lock on the child's behalf (see start_training).
    return cmd + ["--runs-dir", str(runs_dir), "--run-id", run_id, "--no-lock"]


def start_training(cfg: TrainConfig, runs_dir: str | os.PathLike | None = None, run_id: str | None = None) -> runs.Run:
    """Launch a training in a detached child process and return its run folder.

    The machine-wide lock is taken here, before the child exists, and handed to
    the child's pid, so a second session clicking Start while the child is still
    importing TensorFlow is refused instead of racing it.

    Args:
        cfg: the settings (checked here, so bad values fail before any process starts).
        runs_dir: parent of the run folder (default `catdog.config.runs_dir()`).
        run_id: the run folder's name (default: time and preset).

    Raises:
        TrainingBusyError: another training holds the lock.
        ValueError, DatasetError: bad settings or dataset folder.
        RunError: the run folder cannot be made.
    """
    cfg.validate()
    for folder in cfg.data_folders():
        data.discover(folder)  # a wrong folder is reported now, not in a log
    if cfg.init_from:
        from catdog.training import resolve_init_from

        resolve_init_from(cfg.init_from)
    root = Path(runs_dir) if runs_dir else config.runs_dir()
    _refuse_if_busy(root)
    run = _make_run_folder(root, run_id) if run_id else _make_fresh_run_folder(root, cfg.model)
    try:
        runs.acquire_lock(run, root)
    except TrainingBusyError:
        _remove_empty_run(run)
        raise
    try:
        proc = _spawn(train_command(cfg, run.id, root), run.log_path)
    except BaseException:
        runs.release_lock(root)
        _remove_empty_run(run)
        raise
    runs.atomic_write_json(runs.lock_path(root), {"pid": proc.pid, "run": str(run.path), "since": time.time()})
    threading.Thread(target=_reap, args=(proc, root), name=f"catdog-reap-{proc.pid}", daemon=True).start()
    return run


def _refuse_if_busy(root: Path) -> None:
    holder = runs.read_lock(root)
    if holder:
        raise TrainingBusyError(
            f"another training is running (run {Path(holder.get('run', '?')).name}, pid {holder.get('pid')}); "
            "watch it on the Train page, or stop it first"
        )


def _make_run_folder(root: Path, run_id: str) -> runs.Run:
    runs.check_run_id(run_id)
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / run_id).mkdir()
    except FileExistsError:
        raise RunError(f"run {run_id!r} already exists in {str(root)!r}; choose another run id") from None
    except OSError as exc:
        raise RunError(f"cannot create run folder under {str(root)!r}: {exc.strerror or exc}") from exc
    return runs.Run(root / run_id)


def _make_fresh_run_folder(root: Path, preset: str) -> runs.Run:
    """A new run folder named by time and preset; a second Start in the same second gets -2."""
    base = runs.new_run_id(preset)
    for n in range(1, 100):
        try:
            return _make_run_folder(root, base if n == 1 else f"{base}-{n}")
        except RunError:
            if not (root / base).exists():
                raise
    raise RunError(f"cannot find a free run id like {base!r} in {str(root)!r}")


def _spawn(cmd: list[str], log_path: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with open(log_path, "ab") as log:
        log.write(("$ " + shlex.join(["python", *cmd[1:]]) + "\n").encode())
        log.flush()
        # A new session: Ctrl-C in the app's terminal and a dying app leave the training alone.
        return subprocess.Popen(
            cmd, cwd=config.project_root(), env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
        )


def _reap(proc: subprocess.Popen, root: Path) -> None:
    """Wait for the child so it leaves no zombie, then free the lock it held."""
    proc.wait()
    runs.release_lock(root, pid=proc.pid)


def _remove_empty_run(run: runs.Run) -> None:
    run.log_path.unlink(missing_ok=True)
    try:
        run.path.rmdir()
    except OSError:
        pass


def active_run(runs_dir: str | os.PathLike | None = None) -> runs.Run | None:
    """The run that holds the training lock on this machine, or None."""
    holder = runs.read_lock(runs_dir)
    if not holder or not holder.get("run"):
        return None
    return runs.Run(Path(holder["run"]))


def job_status(run: runs.Run, runs_dir: str | os.PathLike | None = None) -> JobStatus:
    """The state of a background training, including a child that died.

    Args:
        run: the run folder.
        runs_dir: the runs folder whose lock the job holds (default: the run's parent).
    """
    root = Path(runs_dir) if runs_dir else run.path.parent
    status = run.status()
    state = status.get("state", "unknown")
    holder = runs.read_lock(root)
    holds_lock = bool(holder) and Path(holder.get("run", "")) == run.path
    if state == "unknown":
        if holds_lock:
            return JobStatus(run, "starting", alive=True)
        tail = log_tail(run)
        return JobStatus(run, "failed", alive=False, error=_early_exit_reason(tail), log_tail=tail)
    alive = state in runs.ACTIVE_STATES
    error = status.get("error") if state == "failed" else None
    return JobStatus(run, state, alive, error, log_tail(run) if state == "failed" else "")


def _early_exit_reason(tail: str) -> str:
    lines = [line for line in tail.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    if errors:
        return errors[-1][len("error:"):].strip()
    last = lines[-1] if lines else "no output"
    return f"the training process ended before it started training (last output: {last})"


def log_tail(run: runs.Run, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of the run's train.log ('' if there is none)."""
    try:
        with open(run.log_path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    # Keras progress bars are coloured and redraw with \r and \b; keep what a terminal would show.
    text = _ANSI.sub("", text).replace("\b", "")
    shown = [line.rsplit("\r", 1)[-1] for line in text.rstrip().split("\n")]
    shown = [line for line in shown if not _NOISE.match(line)]
    return "\n".join(shown[-lines:])


def stop_training(run: runs.Run) -> None:
    """Ask a background training to stop cleanly; it keeps the model so far."""
    run.request_stop()
