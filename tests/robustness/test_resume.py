"""Stop → resume really continues; a run killed before its model was written is recovered."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import pytest

from catdog import cli, config, jobs, runs
from catdog.training import resume, train
from tests.fixtures import REPO, epochs_of, quiet, tiny_config


class StopInEpoch2(keras.callbacks.Callback):
    """Presses Stop (the STOP file, as `catdog stop` and the Stop button do) early in epoch 2."""

    def __init__(self, run_path: Path):
        super().__init__()
        self.run_path = run_path

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1 and batch == 0:
            runs.Run(self.run_path).request_stop()


def stopped_run(tiny_dataset: Path, runs_dir: Path, run_id: str = "stopped") -> runs.Run:
    run = train(
        tiny_config(tiny_dataset), runs_dir=runs_dir, run_id=run_id, callbacks=[StopInEpoch2(runs_dir / run_id)], **quiet(lock=False)
    )
    assert run.status()["state"] == "stopped" and run.stop_requested()
    return run


@pytest.mark.slow
def test_catdog_train_resume_after_a_stop_reaches_the_requested_epochs_once_each(tmp_path, tiny_dataset, stats):
    run = stopped_run(tiny_dataset, tmp_path)
    stats.fault()
    out, err = io.StringIO(), io.StringIO()
    # The STOP file is left where `catdog stop` put it: resume must withdraw it itself.
    assert cli.main(["train", "--resume", str(run.path)], out, err) == 0, err.getvalue()
    assert epochs_of(run) == [1, 2, 3] and not any(r.get("partial") for r in run.metrics())
    assert run.status()["state"] == "finished" and not run.stop_requested()
    # Stop again, then resume to a larger total: still every epoch exactly once.
    run.request_stop()
    assert cli.main(["train", "--resume", str(run.path), "--epochs", "5"], out, err) == 0, err.getvalue()
    assert epochs_of(run) == [1, 2, 3, 4, 5] and run.status()["state"] == "finished"


@pytest.mark.slow
def test_a_stop_requested_after_the_resume_was_asked_for_is_honoured(tmp_path, tiny_dataset, stats):
    run = stopped_run(tiny_dataset, tmp_path)
    asked = time.time() - 60  # the resume was asked for a minute ago; the Stop below came after it
    time.sleep(0.01)
    run.request_stop()
    os.utime(run.stop_file, (asked + 30, asked + 30))
    resume(run, requested_at=asked, **quiet(lock=False))
    stats.fault()
    assert run.status()["state"] == "stopped" and run.stop_requested()
    run.clear_stop(before=asked)  # older requests only: this one stays
    assert run.stop_requested()
    run.clear_stop()
    assert not run.stop_requested()


@pytest.mark.slow
def test_a_stop_pressed_before_the_child_creates_its_run_folder_stops_it_cleanly(tmp_path, tiny_dataset, stats):
    folder = tmp_path / "early"
    folder.mkdir()
    (folder / "train.log").write_text("$ python -m catdog train ...\n")  # what catdog.jobs writes before spawning
    runs.Run(folder).request_stop()
    run = train(tiny_config(tiny_dataset), runs_dir=tmp_path, run_id="early", **quiet(lock=False))
    stats.fault()
    assert run.status()["state"] == "stopped" and epochs_of(run) == [1]


def test_a_run_killed_after_its_last_epoch_gets_its_model_from_the_checkpoint(tmp_path, tiny_run, stats):
    run = runs.Run(tmp_path / "killed")
    shutil.copytree(tiny_run.path, run.path)
    run.model_path.unlink()  # killed between the last checkpoint and model.keras
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run.write_status("running", pid=dead.pid)
    stats.fault()
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["train", "--resume", str(run.path)], out, err) == 0, err.getvalue()
    assert "killed before it was finished" in out.getvalue()
    assert run.status()["state"] == "finished" and run.status()["recovered_from_checkpoint"] is True
    assert keras.saving.load_model(run.model_path).count_params() > 0
    assert epochs_of(run) == epochs_of(tiny_run)
    code = cli.main(["predict", str(REPO / "assets" / "samples" / "cat-1.jpg"), "--model", str(run.path)], io.StringIO(), err)
    assert code == 0, err.getvalue()
    # Once recovered, a further resume says it is complete (nothing is trained twice).
    assert cli.main(["train", "--resume", str(run.path)], out, err) == 2 and "already has all" in err.getvalue()


# --- the Train page's Resume button ---------------------------------------------


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CATDOG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CATDOG_RUNS_DIR", raising=False)
    yield tmp_path / "home"
    holder = runs.read_lock(config.runs_dir())
    if holder:  # never leave a detached training behind
        os.kill(holder["pid"], signal.SIGKILL)


@pytest.mark.slow
def test_the_train_page_resumes_a_stopped_run_to_the_requested_epochs(home, tiny_dataset, stats):
    from streamlit.testing.v1 import AppTest

    run = stopped_run(tiny_dataset, config.runs_dir())
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60).run()
    at = at.switch_page("pages/train.py")
    at.session_state["train_run"] = str(run.path)
    at.run()
    assert not at.exception, at.exception
    assert any("Stopped on request" in w.value for w in at.warning)
    at.number_input(key=f"resume_epochs_{run.id}").set_value(4).run()
    at.button(key=f"resume_{run.id}").click().run()
    assert not at.exception, at.exception
    assert jobs.active_run() is not None and jobs.active_run().path == run.path
    deadline = time.time() + 240
    while time.time() < deadline and run.status().get("state") not in ("finished", "failed"):
        time.sleep(1)
    at.run()
    stats.fault()
    assert run.status()["state"] == "finished", jobs.log_tail(run)
    assert epochs_of(run) == [1, 2, 3, 4] and not run.stop_requested()
    assert "finished" in at.subheader[0].value
    assert not at.get("button") or all(b.key != f"resume_{run.id}" for b in at.button)
