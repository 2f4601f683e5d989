"""A cluster whose peer never starts gives up with a clear error and obeys stop; `catdog stop` signals only a known process."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import closing

import pytest

from catdog import cli, distribute, runs
from catdog.errors import CatdogError
from tests.fixtures import REPO, make_class_folders


def _free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_workers(own: int, peer: int) -> str:
    return json.dumps({"cluster": {"worker": [f"localhost:{own}", f"localhost:{peer}"]}, "task": {"type": "worker", "index": 0}})


@pytest.fixture
def hanging_cluster(monkeypatch):
    """TF_CONFIG for two workers whose peer never comes, and a strategy constructor that waits for it (as TensorFlow does)."""
    released = threading.Event()
    calls = []

    def never_ready():
        calls.append(time.monotonic())
        released.wait(20)  # TensorFlow waits for ever; 20 s keeps a failing test from hanging the suite
        return "strategy"

    monkeypatch.setenv("TF_CONFIG", _two_workers(_free_port(), _free_port()))
    yield never_ready, calls
    released.set()


def test_a_cluster_that_never_starts_times_out_with_a_clear_error(hanging_cluster, monkeypatch, stats):
    never_ready, calls = hanging_cluster
    monkeypatch.setenv("CATDOG_CLUSTER_TIMEOUT", "1")
    start = time.monotonic()
    with pytest.raises(CatdogError, match=r"(?s)other workers.*did not start within 1 s.*CATDOG_CLUSTER_TIMEOUT"):
        distribute.start_cluster(build=never_ready)
    stats.fault()
    assert time.monotonic() - start < 5
    assert calls == []  # TensorFlow was never asked: its wait cannot be interrupted


def test_the_strategy_starts_once_every_peer_answers(monkeypatch, stats):
    with closing(socket.socket()) as peer:
        peer.bind(("127.0.0.1", 0))
        peer.listen()
        monkeypatch.setenv("TF_CONFIG", _two_workers(_free_port(), peer.getsockname()[1]))
        assert distribute.start_cluster(timeout=10, build=lambda: "strategy") == "strategy"
    stats.fault()


def test_sigterm_stops_the_wait_for_the_cluster(hanging_cluster, monkeypatch, stats):
    never_ready, _ = hanging_cluster
    monkeypatch.setenv("CATDOG_CLUSTER_TIMEOUT", "60")
    seen = []
    old = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))  # the training's own handler
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    try:
        timer.start()
        start = time.monotonic()
        with pytest.raises(CatdogError, match="stopped while waiting for the other workers"):
            distribute.start_cluster(build=never_ready)
        waited = time.monotonic() - start
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, old)
    stats.fault()
    assert waited < 5, f"waited {waited:.1f} s after SIGTERM"
    assert seen == [signal.SIGTERM]  # the handler in place before is still called


def test_a_stop_request_ends_the_wait(hanging_cluster, monkeypatch, stats):
    never_ready, _ = hanging_cluster
    monkeypatch.setenv("CATDOG_CLUSTER_TIMEOUT", "60")
    asked = time.monotonic() + 0.5
    start = time.monotonic()
    with pytest.raises(CatdogError, match="stopped while waiting"):
        distribute.start_cluster(stop=lambda: time.monotonic() > asked, build=never_ready)
    assert time.monotonic() - start < 5
    stats.fault()


def test_a_port_already_in_use_is_a_clear_message(hanging_cluster, monkeypatch, stats):
    never_ready, calls = hanging_cluster
    with closing(socket.socket()) as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setenv("TF_CONFIG", _two_workers(port, _free_port()))
        with pytest.raises(CatdogError, match=rf"port {port} .*already in use.*TF_CONFIG"):
            distribute.start_cluster(build=never_ready)
    assert calls == []  # refused before TensorFlow tried to start a server
    stats.fault()


def test_a_bad_cluster_timeout_is_refused():
    with pytest.raises(CatdogError, match="CATDOG_CLUSTER_TIMEOUT='soon'"):
        distribute.cluster_timeout({"CATDOG_CLUSTER_TIMEOUT": "soon"})
    assert distribute.cluster_timeout({}) == distribute.CLUSTER_TIMEOUT


@pytest.mark.slow
def test_a_training_whose_peer_never_starts_fails_clearly_and_frees_the_lock(tmp_path, stats):
    """The real thing: `catdog train --strategy multiworker` with a peer that never starts."""
    data = make_class_folders(tmp_path / "data", n=4, size=(24, 24))
    env = {**os.environ, "TF_CONFIG": _two_workers(_free_port(), _free_port()), "CATDOG_CLUSTER_TIMEOUT": "8",
           "CATDOG_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "catdog", "train", "--data", str(data), "--model", "seed", "--image-size", "32",
           "--epochs", "1", "--batch-size", "4", "--strategy", "multiworker", "--runs-dir", str(tmp_path / "runs"),
           "--run-id", "lonely", "--precision", "float32"]
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    stats.fault()
    assert proc.returncode == 2 and "did not start within 8 s" in proc.stderr, proc.stderr[-3000:]
    run = runs.Run(tmp_path / "runs" / "lonely")
    assert run.status()["state"] == "failed" and "did not start within" in run.status()["error"]
    assert runs.read_lock(tmp_path / "runs") is None
    stats.note(f"a multi-worker training with a missing peer gave up after {time.monotonic() - start:.0f} s (timeout 8 s)")


@pytest.mark.slow
def test_catdog_stop_ends_a_training_waiting_for_its_cluster(tmp_path, stats):
    data = make_class_folders(tmp_path / "data", n=4, size=(24, 24))
    env = {**os.environ, "TF_CONFIG": _two_workers(_free_port(), _free_port()), "CATDOG_CLUSTER_TIMEOUT": "600",
           "CATDOG_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "catdog", "train", "--data", str(data), "--model", "seed", "--image-size", "32",
           "--epochs", "1", "--batch-size", "4", "--strategy", "multiworker", "--runs-dir", str(tmp_path / "runs"),
           "--run-id", "waiting", "--precision", "float32"]
    log = tmp_path / "out.txt"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 300
        while "decoded 2 validation" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(3)  # into the wait for the peer
        assert proc.poll() is None, log.read_text()[-2000:]
        asked = time.monotonic()
        assert cli.main(["stop", str(tmp_path / "runs" / "waiting")], io.StringIO(), io.StringIO()) == 0
        code = proc.wait(timeout=120)
        stats.fault()
        stats.note(f"catdog stop ended a training waiting for its cluster in {time.monotonic() - asked:.1f} s")
    finally:
        proc.kill()
        proc.wait()
    run = runs.Run(tmp_path / "runs" / "waiting")
    assert code == 2 and "stopped while waiting for the other workers" in log.read_text(), log.read_text()[-2000:]
    assert run.status()["state"] == "failed" and runs.read_lock(tmp_path / "runs") is None


# --- item 19: a status without pid_started ----------------------------------------


def test_catdog_stop_never_signals_a_python_process_without_a_recorded_start_time(tmp_path, stats):
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        run = runs.create_run(tmp_path, "handmade")
        run.write_config({"model": "seed"})
        runs.atomic_write_json(run.path / "status.json", {"state": "running", "pid": stranger.pid,
                                                           "host": os.uname().nodename, "updated": time.time()})
        assert cli.main(["stop", str(run.path)], io.StringIO(), io.StringIO()) == 0
        assert run.stop_requested()  # the STOP file is still written for a real training to see
        time.sleep(0.3)
        stats.fault()
        assert stranger.poll() is None, "catdog stop signalled a process it cannot tell is the training"
    finally:
        stranger.kill()
        stranger.wait()


# --- issue 24, item 9: a run that has ended --------------------------------------------


@pytest.mark.parametrize(("state", "said"), [("finished", "has already finished"), ("stopped", "was already stopped"),
                                             ("failed", "has already ended")])
def test_catdog_stop_on_an_ended_run_says_so_and_leaves_no_stop_file(tmp_path, state, said, stats):
    run = runs.create_run(tmp_path, f"done-{state}")
    run.write_config({"model": "seed"})
    run.write_status(state, pid=os.getpid(), started=time.time() - 60, ended=time.time() - 1)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["stop", str(run.path)], out, err)
    stats.fault()
    left = run.stop_requested()
    assert not left, "catdog stop left a STOP file in a run that had ended"
    assert code == 0 and said in out.getvalue() and "stop requested" not in out.getvalue(), out.getvalue()


def test_catdog_stop_reaches_a_resume_that_is_starting(tmp_path, stats):
    """A resume holds the lock before its child writes a status: the last attempt's 'stopped' must not hide it."""
    run = runs.create_run(tmp_path, "resuming")
    run.write_config({"model": "seed"})
    run.write_status("stopped", pid=os.getpid(), started=time.time() - 60, ended=time.time() - 30)
    runs.acquire_lock(run, tmp_path)
    try:
        out = io.StringIO()
        assert cli.main(["stop", str(run.path)], out, io.StringIO()) == 0
    finally:
        runs.release_lock(tmp_path)
    stats.fault()
    assert run.stop_requested() and "stop requested" in out.getvalue()
