"""Faults during training: kill -9, resume, a full disk, a read-only runs folder, torn model files."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from catdog import cli, jobs, runs
from catdog.errors import RunError
from catdog.training import resume, save_model_atomic, train
from tests.fixtures import REPO, epochs_of, quiet, tiny_config

CHILD_TIMEOUT = 180


def assert_readable(run: runs.Run, stats) -> None:
    """Every file a reader uses parses; count the ones that vanished or broke as lost."""
    lost = []
    for name in ("config.json", "status.json", "progress.json", "checkpoint/state.json"):
        if runs.read_json(run.path / name) is None:
            lost.append(name)
    for line in (run.path / "metrics.jsonl").read_text().splitlines():
        json.loads(line)  # a torn line would raise
    try:
        keras.saving.load_model(run.checkpoint_path)
    except Exception as exc:  # noqa: BLE001
        lost.append(f"checkpoint {run.checkpoint_path.name} ({exc})")
    stats.lost(len(lost))
    assert lost == []


# --- kill -9 and resume --------------------------------------------------------

KILLABLE_CHILD = textwrap.dedent(
    """
    import io, sys, time, keras
    from pathlib import Path
    from catdog.training import TrainConfig, train

    data, runs_dir, marker = sys.argv[1:4]

    class HangMidEpoch2(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 1:
                Path(marker).write_text("mid-epoch")
                time.sleep(600)

    cfg = TrainConfig(data=data, model="compact", epochs=3, batch_size=4, image_size=32, val_split=0.25, precision="float32")
    train(cfg, runs_dir=runs_dir, run_id="killed", callbacks=[HangMidEpoch2()], verbose=0)
    """
)


@pytest.mark.slow
def test_kill_9_mid_epoch_leaves_a_readable_stale_run_that_resume_completes(tmp_path, tiny_dataset, stats):
    marker = tmp_path / "mid-epoch"
    runs_dir = tmp_path / "runs"
    child = subprocess.Popen([sys.executable, "-c", KILLABLE_CHILD, str(tiny_dataset), str(runs_dir), str(marker)],
                             cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + CHILD_TIMEOUT
    while not marker.exists() and child.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert marker.exists(), f"the child never reached epoch 2: {child.stderr.read()[-2000:] if child.poll() is not None else 'timeout'}"
    run = runs.Run(runs_dir / "killed")
    assert run.raw_status()["state"] == "running" and runs.read_lock(runs_dir)["pid"] == child.pid
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    stats.fault()

    status = run.status()
    assert status["state"] == "failed" and status["stale"] is True and "killed" in status["error"]
    assert epochs_of(run) == [1]
    assert runs.read_json(run.checkpoint_dir / "state.json")["epoch"] == 1
    assert_readable(run, stats)
    assert runs.read_lock(runs_dir) is None  # the dead child's lock is recognised as stale
    job = jobs.job_status(run, runs_dir)  # what the Train page shows
    assert job.state == "failed" and not job.alive and "killed" in job.error

    proc = subprocess.run([sys.executable, "-m", "catdog", "train", "--resume", str(run.path)],
                          cwd=REPO, capture_output=True, text=True, timeout=CHILD_TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Resuming killed after epoch 1" in proc.stdout
    assert epochs_of(run) == [1, 2, 3]  # no epoch missing, none twice
    status = run.status()
    assert status["state"] == "finished" and status["resumed_from_epoch"] == 1 and not status.get("error")
    assert keras.saving.load_model(run.model_path).count_params() > 0
    assert not list(run.path.rglob(".tmp-*"))


@pytest.mark.slow
def test_resume_after_a_stop_mid_epoch_trains_that_epoch_again(tmp_path, tiny_dataset, stats):
    class StopInEpoch2(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 0:
                runs.Run(tmp_path / "stopped").request_stop()

    run = train(tiny_config(tiny_dataset), runs_dir=tmp_path, run_id="stopped", callbacks=[StopInEpoch2()], **quiet(lock=False))
    stats.fault()
    assert run.status()["state"] == "stopped" and epochs_of(run) == [1, 2] and run.metrics()[1]["partial"]
    assert runs.read_json(run.checkpoint_dir / "state.json")["partial"] is True
    run.stop_file.unlink()
    resume(run, **quiet(lock=False))
    assert epochs_of(run) == [1, 2, 3] and not any(r.get("partial") for r in run.metrics())
    assert run.status()["state"] == "finished"
    # A finished run can be taken further with a larger total.
    resume(run, epochs=4, **quiet(lock=False))
    assert epochs_of(run) == [1, 2, 3, 4] and run.config()["epochs"] == 4


class Killed(BaseException):
    """Stands in for SIGKILL at one exact point of a training."""


@pytest.mark.slow
def test_kill_between_checkpoint_and_state_resumes_from_the_checkpoint_state_names(tmp_path, tiny_dataset, monkeypatch, stats):
    """Issue 10 item 10: the checkpoint and state.json are one unit, so no epoch is trained twice."""
    import catdog.callbacks

    real_write = catdog.callbacks.atomic_write_json
    weights = {}

    def write_state_until_killed(path, data, *args, **kwargs):
        if data["epoch"] == 2:  # epoch 2's model is saved, its state.json not yet
            raise Killed()
        real_write(path, data, *args, **kwargs)

    class Weights(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            weights[epoch + 1] = self.model.get_weights()

    monkeypatch.setattr(catdog.callbacks, "atomic_write_json", write_state_until_killed)
    with pytest.raises(Killed):
        train(tiny_config(tiny_dataset), runs_dir=tmp_path, run_id="torn", callbacks=[Weights()], **quiet(lock=False))
    monkeypatch.undo()
    stats.fault()
    run = runs.Run(tmp_path / "torn")
    assert run.checkpoint_state()["epoch"] == 1 and len(list(run.checkpoint_dir.glob("last*.keras"))) == 2
    restored = keras.saving.load_model(run.checkpoint_path)
    for a, b in zip(restored.get_weights(), weights[1]):
        np.testing.assert_array_equal(a, b)  # epoch 1's weights, not epoch 2's under epoch 1's state
    resume(run, **quiet(lock=False))
    assert epochs_of(run) == [1, 2, 3] and run.status()["state"] == "finished"
    assert [p.name for p in run.checkpoint_dir.glob("last*.keras")] == [run.checkpoint_state()["checkpoint"]]


@pytest.mark.slow
def test_resume_refuses_complete_running_and_checkpointless_runs(tmp_path, tiny_run):
    with pytest.raises(RunError, match=r"already has all 2 epochs; pass --epochs"):
        resume(tiny_run, **quiet(lock=False))
    running = runs.create_run(tmp_path, "running")
    running.write_config({"model": "seed"})
    running.write_status("running", pid=os.getpid())
    with pytest.raises(RunError, match="still running"):
        resume(running, **quiet(lock=False))
    running.write_status("failed", pid=os.getpid())
    with pytest.raises(RunError, match="no checkpoint to resume from"):
        resume(running, **quiet(lock=False))
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["train", "--resume", str(tmp_path / "nope")], out, err) == 2
    assert err.getvalue().startswith("error: run folder") and "Traceback" not in err.getvalue()


# --- full disk and read-only folders --------------------------------------------


@pytest.mark.slow
def test_a_full_disk_mid_training_gives_a_clear_error_and_keeps_the_last_checkpoint(tmp_path, tiny_dataset, monkeypatch, stats):
    real_write = runs.Run.write_metrics
    calls = []

    def write_metrics_until_full(self, rows):
        calls.append(len(rows))
        if len(calls) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path / "metrics.jsonl"))
        real_write(self, rows)

    monkeypatch.setattr(runs.Run, "write_metrics", write_metrics_until_full)
    with pytest.raises(RunError, match=r"disk is full.*--resume") as info:
        train(tiny_config(tiny_dataset), runs_dir=tmp_path, run_id="full", **quiet(lock=False))
    stats.fault()
    assert "metrics.jsonl" in str(info.value)
    run = runs.Run(tmp_path / "full")
    assert run.status()["state"] == "failed" and "disk is full" in run.status()["error"]
    assert epochs_of(run) == [1]  # the old file is intact, not truncated
    assert_readable(run, stats)
    monkeypatch.setattr(runs.Run, "write_metrics", real_write)  # space freed
    resume(run, **quiet(lock=False))
    assert epochs_of(run) == [1, 2, 3]


@pytest.fixture
def mount_tmpfs(tmp_path):
    """Mount a small tmpfs (root only); skip where mounting is not allowed."""
    mounted = []

    def mount(name: str, options: str) -> Path:
        target = tmp_path / name
        target.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode}); the simulated tests cover this")
        mounted.append(target)
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.mark.slow
def test_a_really_full_disk_fails_the_run_cleanly_without_leftover_temp_files(tmp_path, tiny_dataset, mount_tmpfs, stats):
    disk = mount_tmpfs("full", "size=256k")  # room for the JSON files, not for a checkpoint
    with pytest.raises(RunError, match="disk is full"):
        train(tiny_config(tiny_dataset), runs_dir=disk, run_id="r", **quiet(lock=False))
    stats.fault()
    run = runs.Run(disk / "r")
    assert run.config()["model"] == "seed"
    assert run.status()["state"] in ("failed", "running")  # the failed status may itself not fit
    assert not list(disk.rglob(".tmp-*")) and not list(disk.rglob("*.tmp"))


def test_a_read_only_runs_folder_gives_a_clear_error(tmp_path, tiny_dataset, mount_tmpfs, stats):
    if os.geteuid() == 0:
        folder = mount_tmpfs("ro", "ro,size=64k")
    else:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
    for runs_dir in (folder, folder / "sub"):
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(["train", "--model", "compact", "--data", str(tiny_dataset), "--runs-dir", str(runs_dir), "--image-size", "32"],
                        out, err)
        stats.fault()
        assert code == 2
        assert re.search(
            r"^error: (runs folder .* is not writable|cannot create runs folder .*(Read-only|Permission denied))", err.getvalue()
        ), err.getvalue()


# --- the model file is never half-written ----------------------------------------


def tiny_model(value: float):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(64, kernel_initializer=keras.initializers.Constant(value))])
    return model


@pytest.mark.slow
def test_a_reader_polling_the_model_file_sees_the_old_or_the_new_model(tmp_path, stats):
    path = tmp_path / "model.keras"
    models = [tiny_model(1.0), tiny_model(2.0)]
    save_model_atomic(models[0], path)
    seen, problems, done = [], [], threading.Event()

    def reader():
        while not done.is_set():
            try:
                kernel = keras.saving.load_model(path, compile=False).get_weights()[0]
                seen.append(float(kernel.flat[0]))
            except Exception as exc:  # noqa: BLE001
                problems.append(repr(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(12):
            save_model_atomic(models[i % 2], path)
            stats.fault()
    finally:
        done.set()
        thread.join(60)
    stats.input(not problems, n=len(seen) + len(problems))
    assert problems == []
    assert seen and set(seen) <= {1.0, 2.0}
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


@pytest.mark.slow
def test_kill_9_while_saving_leaves_the_previous_model_loadable(tmp_path, stats):
    """The kill lands while a save is in progress: its temporary file is still there afterwards, and model.keras loads."""
    path = tmp_path / "model.keras"
    save_model_atomic(tiny_model(1.0), path)
    script = textwrap.dedent(
        f"""
        import keras, sys
        from catdog.training import save_model_atomic
        model = keras.Sequential([keras.Input((512,)), keras.layers.Dense(2048)])  # 4 MB: each save takes a while
        print("ready", flush=True)
        while True:
            save_model_atomic(model, {str(path)!r})
        """
    )
    for _ in range(5):
        child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        deadline = time.time() + CHILD_TIMEOUT
        while not list(tmp_path.glob(".tmp-model.keras-*")) and time.time() < deadline:
            time.sleep(0.001)  # the kill follows the temporary file's appearance, within a millisecond
        child.kill()
        child.wait(30)
        stats.fault()
        in_progress = list(tmp_path.glob(".tmp-model.keras-*"))
        assert keras.saving.load_model(path, compile=False).count_params() in (4 * 64 + 64, 512 * 2048 + 2048)
        if in_progress:
            break  # a save was interrupted, and the previous model survived it
    assert in_progress, "no kill landed during a save in 5 tries"
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".tmp-")] == ["model.keras"]


# --- hand-damaged run folders ----------------------------------------------------

DAMAGED = {
    "status-not-json": {"status.json": "{half a status", "config.json": "{}"},
    "status-pid-text": {"status.json": json.dumps({"state": "running", "pid": "abc"}), "config.json": "{}"},
    "status-a-list": {"status.json": "[1, 2]", "config.json": "{}"},
    "config-a-list": {"config.json": "[1]"},
    "config-empty": {"config.json": ""},
    "created-text": {"config.json": json.dumps({"created": "yesterday", "model": "seed"})},
    "settings-text": {"config.json": json.dumps({"learning_rate": "fast", "image_size": 64, "model": "seed"}),
                      "status.json": json.dumps({"state": "finished", "started": "noon", "ended": None})},
    "metrics-odd-rows": {"config.json": "{}", "metrics.jsonl": '5\n"x"\n{"epoch": 1, "val_accuracy": "high"}\n{"epoch": 2, "val_acc'},
}


@pytest.mark.slow
def test_damaged_run_files_never_break_listing_status_or_the_runs_page(tmp_path, monkeypatch, stats):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CATDOG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CATDOG_RUNS_DIR", raising=False)
    root = tmp_path / "home" / "runs"
    for name, files in DAMAGED.items():
        (root / name).mkdir(parents=True)
        for file, text in files.items():
            (root / name / file).write_text(text)
    stats.fault(len(DAMAGED))
    listed = runs.list_runs(root)
    assert sorted(r.id for r in listed) == sorted(DAMAGED)
    for run in listed:
        status = run.status()
        assert isinstance(status, dict) and status["state"] in (*runs.STATES, "unknown")
        assert jobs.job_status(run, root).state in (*runs.STATES, "unknown")
        assert all(isinstance(r["epoch"], int) for r in run.metrics())
        run.best_val_accuracy()
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["runs"], out, err) == 0
    listed = [line for line in out.getvalue().splitlines() if " epochs " in line]  # one row a run (not the heading lines)
    assert len(listed) == len(DAMAGED), out.getvalue()
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60).run()
    at = at.switch_page("pages/runs.py").run()
    assert not at.exception, [e.value for e in at.exception]
