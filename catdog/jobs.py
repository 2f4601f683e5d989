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

from catdog import config, runs
from catdog.distribute import check_environment
from catdog.errors import RunError, TrainingBusyError
from catdog.training import TrainConfig, config_flags, find_layouts, resolve_init_from

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
    cfg.validate()  # resolve() would also pick the precision for this hardware, which imports TensorFlow into the app
    check_environment()  # a bad TF_CONFIG or CATDOG_CLUSTER_TIMEOUT, before a run folder exists
    find_layouts(cfg)  # a wrong folder, or photos in two splits, is reported now, not in a log
    if cfg.init_from:
        resolve_init_from(cfg.init_from)
    root = Path(runs_dir) if runs_dir else config.runs_dir()
    _refuse_if_busy(root)
    run = _make_run_folder(root, run_id) if run_id else _make_fresh_run_folder(root, cfg.model)
    try:
        _launch(train_command(cfg, run.id, root), run, root)
    except BaseException:
        _remove_empty_run(run)
        raise
    return run


def resumable(run: runs.Run) -> bool:
    """Whether `run` is a stopped, failed or killed run with a checkpoint to continue from."""
    state = run.status().get("state")
    has_checkpoint = run.checkpoint_state() is not None and run.checkpoint_path.exists()
    return state in ("stopped", "failed") and has_checkpoint


def start_resume(run: runs.Run, epochs: int | None = None) -> runs.Run:
    """Continue a stopped, failed or killed run in a detached `python -m catdog train --resume RUN`.

    The lock is taken here on the child's behalf, as in `start_training`; the
    child withdraws the stop request that ended the previous attempt (a Stop
    pressed after this call is honoured).

    Args:
        run: the run to continue (its own settings are used).
        epochs: a new total number of epochs (default: the run's own).

    Raises:
        RunError: the run is active or has no checkpoint.
        TrainingBusyError: another training holds the lock.
    """
    if not resumable(run):
        raise RunError(f"run {run.id!r} cannot be resumed: only a stopped, failed or killed run with a checkpoint can")
    if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    check_environment()
    root = run.path.parent
    _refuse_if_busy(root)
    requested_at = time.time()
    cmd = [sys.executable, "-m", "catdog", "train", "--resume", str(run.path), "--no-lock", "--requested-at", repr(requested_at)]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    _launch(cmd, run, root)
    return run


def _launch(cmd: list[str], run: runs.Run, root: Path) -> subprocess.Popen:
    """Take the lock for `run`, spawn `cmd`, and hand the lock to the child."""
    runs.acquire_lock(run, root)
    try:
        proc = _spawn(cmd, run.log_path)
    except BaseException:
        runs.release_lock(root)
        raise
    runs.atomic_write_json(runs.lock_path(root), runs.lock_record(run, proc.pid))
    threading.Thread(target=_reap, args=(proc, root), name=f"catdog-reap-{proc.pid}", daemon=True).start()
    return proc


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
    if holds_lock and state in ("stopped", "failed", "finished") and _resume_pending(run, holder):
        return JobStatus(run, "starting", alive=True)
    if state == "unknown":
        if holds_lock:
            return JobStatus(run, "starting", alive=True)
        tail = log_tail(run)
        return JobStatus(run, "failed", alive=False, error=_early_exit_reason(tail), log_tail=tail)
    alive = state in runs.ACTIVE_STATES
    error = status.get("error") if state == "failed" else None
    return JobStatus(run, state, alive, error, log_tail(run) if state == "failed" else "")


def _resume_pending(run: runs.Run, holder: dict) -> bool:
    """A resume's child holds the lock but has not yet written its status (it still shows the last attempt's)."""
    updated = run.raw_status().get("updated")
    since = holder.get("since")
    return isinstance(updated, (int, float)) and isinstance(since, (int, float)) and updated < since


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
