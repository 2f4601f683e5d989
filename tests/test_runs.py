from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from catdog import runs
from catdog.errors import RunError, TrainingBusyError


def test_atomic_write_leaves_no_temp_files_and_readers_never_see_half(tmp_path):
    target = tmp_path / "status.json"
    big = {"x": "y" * 200_000}
    seen = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            if target.exists():
                seen.append(runs.read_json(target) is not None)

    t = threading.Thread(target=reader)
    t.start()
    for i in range(30):
        runs.atomic_write_json(target, {**big, "i": i})
    stop.set()
    t.join()
    assert seen and all(seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["status.json"]


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "config.json"
    runs.atomic_write_json(target, {"old": True})

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        runs.atomic_write_json(target, {"new": True})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_run_with_dead_pid_reads_as_failed_and_stale(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    run = runs.create_run(tmp_path, "r1")
    run.write_config({"model": "seed"})
    run.write_status("running", pid=proc.pid)
    status = run.status()
    assert status["state"] == "failed" and status["stale"] is True
    assert "killed" in status["error"]
    assert run.raw_status()["state"] == "running"


def test_existing_run_is_never_overwritten(tmp_path):
    runs.create_run(tmp_path, "same")
    with pytest.raises(RunError, match="already exists"):
        runs.create_run(tmp_path, "same")


@pytest.mark.parametrize("bad", ["../escape", "a/b", "", ".."])
def test_hostile_run_ids_are_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="run id"):
        runs.create_run(tmp_path, bad)


def test_lock_admits_one_and_detects_stale_holder(tmp_path):
    run = runs.create_run(tmp_path, "a")
    runs.acquire_lock(run, tmp_path)
    with pytest.raises(TrainingBusyError, match="another training is running"):
        runs.acquire_lock(run, tmp_path, pid=os.getpid() + 1)
    runs.release_lock(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    runs.acquire_lock(run, tmp_path, pid=dead.pid)
    assert runs.read_lock(tmp_path) is None  # holder is dead
    runs.acquire_lock(run, tmp_path)  # stale lock is taken over
    assert runs.read_lock(tmp_path)["pid"] == os.getpid()
    runs.release_lock(tmp_path)


def test_list_and_delete_runs(tmp_path):
    for name in ("one", "two"):
        r = runs.create_run(tmp_path, name)
        r.write_config({"created": 1 if name == "one" else 2})
        r.write_status("finished")
    assert [r.id for r in runs.list_runs(tmp_path)] == ["two", "one"]
    runs.delete_run(runs.open_run(tmp_path / "one"))
    assert [r.id for r in runs.list_runs(tmp_path)] == ["two"]


def test_atomic_writes_get_the_usual_file_mode_not_mkstemps_private_one(tmp_path):
    import os
    import stat

    from catdog.runs import atomic_write_json

    atomic_write_json(tmp_path / "config.json", {"a": 1})
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "config.json").stat().st_mode) == 0o666 & ~mask


def test_bundled_names_the_bundled_models_folder_for_run_commands():
    from catdog.model_files import bundled_model_dir
    from catdog.runs import open_run

    if bundled_model_dir() is None:
        pytest.skip("assets/model (the bundled model) is missing")
    assert open_run("bundled").path == bundled_model_dir().resolve()
