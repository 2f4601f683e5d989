"""Concurrency: many sessions on one cached Predictor, racing training starts, stale locks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from catdog import jobs, runs
from catdog.errors import TrainingBusyError
from catdog.predict import Predictor
from catdog.training import TrainConfig
from tests.fixtures import CAT_COLOUR, DOG_COLOUR, REPO, image_bytes


@pytest.mark.slow
def test_threads_sharing_one_predictor_get_the_same_answers_as_one_thread(tiny_run, stats):
    photos = [image_bytes(colour=(CAT_COLOUR, DOG_COLOUR)[i % 2], seed=i, size=(60 + i, 50)) for i in range(32)]
    expected = [r.p_dog for r in Predictor.load(tiny_run.path).predict(photos)]
    shared = Predictor.load(tiny_run.path)  # fresh: the threads race to compile it as well
    barrier = threading.Barrier(8)

    def session(k: int) -> list[tuple[int, float]]:
        barrier.wait()
        got = []
        for i in range(k, len(photos) * 3, 8):
            j = i % len(photos)
            got.append((j, shared.predict_one(photos[j], f"{k}-{i}").p_dog))
        return got

    with ThreadPoolExecutor(8) as pool:
        results = [pair for part in pool.map(session, range(8)) for pair in part]
    stats.input(True, n=len(results))
    assert len(results) == len(photos) * 3
    wrong = [(j, p) for j, p in results if p != pytest.approx(expected[j], abs=1e-5)]
    assert wrong == []


CONTENDER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from catdog import runs
    from catdog.errors import TrainingBusyError

    root, name, go, release = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.001)
    try:
        runs.acquire_lock(runs.Run(root / name), root)
    except TrainingBusyError as exc:
        print(json.dumps({"won": False, "error": str(exc)}), flush=True)
    else:
        print(json.dumps({"won": True}), flush=True)
        while not release.exists():  # hold it until every contender has tried
            time.sleep(0.001)
        runs.release_lock(root)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("start", ["free", "stale lock", "garbage lock"])
def test_processes_racing_for_the_training_lock_exactly_one_wins(tmp_path, start, stats):
    rounds, contenders = 4, 3
    for r in range(rounds):
        root = tmp_path / f"round{r}"
        root.mkdir()
        if start == "stale lock":  # left by a training that was killed
            runs.lock_path(root).write_text(json.dumps({"pid": dead_pid(), "run": str(root / "old")}))
        elif start == "garbage lock":
            runs.lock_path(root).write_text("{half a lock")
            old = time.time() - 60
            os.utime(runs.lock_path(root), (old, old))
        go, release = root / "go", root / "release"
        procs = [subprocess.Popen([sys.executable, "-c", CONTENDER, str(root), f"run{i}", str(go), str(release)], cwd=REPO,
                                  stdout=subprocess.PIPE, text=True) for i in range(contenders)]
        assert [p.stdout.readline().strip() for p in procs] == ["ready"] * contenders  # all of them spinning on the go file
        go.touch()
        outcomes = [json.loads(p.stdout.readline()) for p in procs]  # each has tried once; the winner still holds the lock
        release.touch()
        assert [p.wait(timeout=60) for p in procs] == [0] * contenders
        stats.fault(contenders)
        winners = [o for o in outcomes if o["won"]]
        assert len(winners) == 1, outcomes
        assert all("another training is running" in o["error"] for o in outcomes if not o["won"])
        assert runs.read_lock(root) is None  # released by the winner
        assert not [p.name for p in root.iterdir() if "stale" in p.name]


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_lock_held_by_a_live_process_is_respected_and_a_dead_one_is_taken_over(tmp_path, stats):
    holder = subprocess.Popen(["sleep", "30"])
    try:
        # As catdog writes it: with the holder's start time (a bare pid is not trusted for a non-Python process).
        runs.lock_path(tmp_path).write_text(
            json.dumps({"pid": holder.pid, "pid_started": runs.process_start_time(holder.pid), "run": str(tmp_path / "theirs")})
        )
        with pytest.raises(TrainingBusyError, match=rf"run theirs, pid {holder.pid}"):
            runs.acquire_lock(runs.Run(tmp_path / "mine"), tmp_path)
    finally:
        holder.kill()
        holder.wait()
    stats.fault()
    runs.acquire_lock(runs.Run(tmp_path / "mine"), tmp_path)  # the holder died: its lock is stale
    assert runs.read_lock(tmp_path)["pid"] == os.getpid()
    runs.release_lock(tmp_path)


def test_two_sessions_pressing_start_at_once_start_exactly_one_training(tmp_path, tiny_dataset, monkeypatch, stats):
    children = []

    def fake_spawn(cmd, log_path):  # a stand-in child: the race is about the lock, not TensorFlow
        proc = subprocess.Popen(["sleep", "30"])
        children.append(proc)
        return proc

    monkeypatch.setattr(jobs, "_spawn", fake_spawn)
    cfg = TrainConfig(data=str(tiny_dataset), epochs=1, batch_size=4, image_size=32, val_split=0.25)
    barrier = threading.Barrier(4)

    def press_start(i: int):
        barrier.wait()
        try:
            return jobs.start_training(cfg, runs_dir=tmp_path, run_id=f"session{i}")
        except TrainingBusyError as exc:
            return exc

    try:
        with ThreadPoolExecutor(4) as pool:
            outcomes = list(pool.map(press_start, range(4)))
        stats.fault(4)
        started = [o for o in outcomes if isinstance(o, runs.Run)]
        assert len(started) == 1 and len(children) == 1, outcomes
        assert jobs.active_run(tmp_path).path == started[0].path
        # The losers left no empty run folders behind.
        assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [started[0].id]
    finally:
        for proc in children:
            proc.kill()
            proc.wait()
    deadline = time.time() + 10
    while runs.read_lock(tmp_path) and time.time() < deadline:
        time.sleep(0.05)
    assert runs.read_lock(tmp_path) is None  # the reaper freed the lock when the child died


@pytest.mark.slow
def test_two_cli_trainings_started_together_one_trains_the_other_is_refused(tmp_path, tiny_dataset, stats):
    cmd = [
        sys.executable,
        "-m",
        "catdog",
        "train",
        "--model",
        "compact",
        "--data",
        str(tiny_dataset),
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--image-size",
        "32",
        "--val-split",
        "0.25",
        "--runs-dir",
        str(tmp_path),
    ]
    procs = [
        subprocess.Popen(cmd + ["--run-id", f"cli{i}"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    stats.fault(2)
    codes = sorted(r[2] for r in results)
    assert codes == [0, 2], results
    loser = next(r for r in results if r[2] == 2)
    assert "error: another training is running" in loser[1] and "Traceback" not in loser[1]
    winner = next(i for i, r in enumerate(results) if r[2] == 0)
    assert runs.Run(tmp_path / f"cli{winner}").status()["state"] == "finished"
    assert runs.read_lock(tmp_path) is None
