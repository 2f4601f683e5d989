"""A recorded pid is trusted only for the process that recorded it (pid and start time)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import time

import psutil
import pytest

from catdog import cli, jobs, runs


@pytest.fixture
def stranger():
    """An unrelated long-lived process (not Python, not catdog)."""
    proc = subprocess.Popen(["sleep", "120"])
    yield proc
    proc.kill()
    proc.wait()


def _stale_run(tmp_path, pid: int, started: float | None) -> runs.Run:
    run = runs.create_run(tmp_path, "stale")
    run.write_config({"model": "seed"})
    status = {"state": "running", "pid": pid, "host": os.uname().nodename, "updated": time.time()}
    if started is not None:
        status["pid_started"] = started
    runs.atomic_write_json(run.path / "status.json", status)
    return run


@pytest.mark.parametrize("recorded", ["other start time", "no start time"])
def test_catdog_stop_never_signals_a_process_that_reused_the_runs_pid(tmp_path, stranger, recorded, stats):
    started = psutil.Process(stranger.pid).create_time() - 3600 if recorded == "other start time" else None
    run = _stale_run(tmp_path, stranger.pid, started)
    stats.fault()
    assert run.status()["state"] == "failed" and run.status()["stale"] is True  # seen as a dead training
    assert cli.main(["stop", str(run.path)], io.StringIO(), io.StringIO()) == 0
    time.sleep(0.3)
    assert stranger.poll() is None, "catdog stop killed an unrelated process"


def test_the_recorded_training_itself_is_still_recognised_and_signalled(tmp_path, stats):
    child = subprocess.Popen(["python", "-c", "import time; time.sleep(120)"])
    try:
        run = runs.create_run(tmp_path, "live")
        run.write_config({"model": "seed"})
        run.write_status("running", pid=child.pid)  # records its start time
        assert run.raw_status()["pid_started"] == pytest.approx(psutil.Process(child.pid).create_time())
        assert run.status()["state"] == "running"
        run.request_stop()
        assert child.wait(timeout=10) != 0  # SIGTERM reached it
    finally:
        child.kill()
        child.wait()
    stats.fault()


@pytest.mark.parametrize("holder", ["pid 1", "reused pid"])
def test_a_lock_held_by_a_pid_that_is_not_the_training_does_not_block(tmp_path, stranger, holder, stats):
    pid, started = (1, None) if holder == "pid 1" else (stranger.pid, psutil.Process(stranger.pid).create_time() - 3600)
    runs.lock_path(tmp_path).write_text(
        json.dumps({"pid": pid, "pid_started": started, "run": str(tmp_path / "old"), "since": time.time()})
    )
    stats.fault()
    assert runs.read_lock(tmp_path) is None and jobs.active_run(tmp_path) is None
    run = runs.create_run(tmp_path, "new")
    runs.acquire_lock(run, tmp_path)
    assert runs.read_lock(tmp_path)["pid"] == os.getpid()
    runs.release_lock(tmp_path)
    assert stranger.poll() is None


def test_a_live_training_lock_still_blocks_a_second_training(tmp_path, stats):
    from catdog.errors import TrainingBusyError

    first = runs.create_run(tmp_path, "first")
    runs.acquire_lock(first, tmp_path)
    try:
        assert runs.read_lock(tmp_path)["pid_started"] == pytest.approx(psutil.Process().create_time())
        with pytest.raises(TrainingBusyError):
            runs.acquire_lock(runs.create_run(tmp_path, "second"), tmp_path)
    finally:
        runs.release_lock(tmp_path)
    stats.fault()
