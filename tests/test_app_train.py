"""Train page (AppTest): start a tiny background training, watch it, stop it, use it."""

from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest
from streamlit.testing.v1 import AppTest

from catdog import config, jobs, predict, runs
from tests.fixtures import REPO

pytestmark = pytest.mark.slow  # TensorFlow models or trainings; `pytest -m "not slow"` leaves them out

TIMEOUT = 60


def open_train_page() -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT).run()
    return at.switch_page("pages/train.py").run()


def rerun_until(at: AppTest, predicate, timeout: float = 120.0) -> AppTest:
    """Rerun the page (as the fragment's timer would) until predicate(at) holds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        at.run()
        assert not at.exception, at.exception
        if predicate(at):
            return at
        time.sleep(0.5)
    raise AssertionError(f"page never reached the expected state; subheaders: {[s.value for s in at.subheader]}")


def fill_tiny_settings(at: AppTest, data: str, epochs: int) -> AppTest:
    at.text_input(key="train_data").set_value(data).run()
    at.selectbox(key="train_preset").set_value("seed").run()
    at.number_input(key="train_epochs_seed").set_value(epochs)
    at.number_input(key="train_batch_seed").set_value(2)
    at.number_input(key="train_size_seed").set_value(32)
    return at.run()


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_defaults_come_from_the_config_and_the_preset(home):
    at = open_train_page()
    assert not at.exception
    preset = at.selectbox(key="train_preset").value
    assert preset == config.DEFAULT_PRESET
    from catdog.models import get_preset

    assert at.number_input(key=f"train_size_{preset}").value == get_preset(preset).image_size
    assert at.number_input(key=f"train_epochs_{preset}").value == get_preset(preset).epochs
    assert at.button(key="train_start").disabled  # no dataset yet


def test_a_wrong_dataset_folder_is_explained_and_start_stays_off(home, tmp_path):
    at = open_train_page()
    at.text_input(key="train_data").set_value(str(tmp_path / "missing")).run()
    assert "does not exist" in at.error[0].value
    assert at.button(key="train_start").disabled


@pytest.mark.slow
def test_start_watch_stop_and_use_a_background_training(home, tiny_dataset):
    at = fill_tiny_settings(open_train_page(), str(tiny_dataset), epochs=300)
    assert "folders layout" in " ".join(c.value for c in at.caption)
    at.button(key="train_start").click().run()
    assert not at.exception
    run = jobs.active_run()
    assert run is not None and at.button(key="train_start").disabled

    # A second browser session sees the job and cannot start another one.
    other = open_train_page()
    assert other.button(key="train_start").disabled
    assert run.id in other.subheader[0].value

    rerun_until(at, lambda a: len(a.get("plotly_chart")) == 2)
    assert chart_titles(at) == ["Accuracy", "Loss"]
    assert [m.label for m in at.metric][:3] == ["Epoch", "Train accuracy", "Val accuracy"]
    assert "Epoch" in at.get("progress")[0].proto.text

    at.button(key="train_stop").click().run()
    rerun_until(at, lambda a: "stopped" in a.subheader[0].value and not a.button(key="train_start").disabled)
    assert run.status()["state"] == "stopped" and run.model_path.exists()
    assert any("Stopped on request" in w.value for w in at.warning)
    assert len(at.get("download_button")) == 2  # accuracy.png and loss.png

    from catdog import catalog

    confirm, warn = catalog.replace_check(run, measure=True)  # as the click does: both models on the same photos
    at.button(key=f"use_{run.id}").click().run()
    if confirm or warn:  # e.g. the bundled model scores better than this tiny run: replacing it asks first
        assert predict.default_model() != run.model_path.resolve()
        assert any("Replace it anyway?" in m.value or "anyway" in m.value for m in at.markdown)
        at.button(key=f"use_yes_{run.id}").click().run()
    assert predict.default_model() == run.model_path.resolve()


@pytest.mark.slow
def test_a_training_that_dies_shows_the_error_and_the_log(home, tiny_dataset):
    at = fill_tiny_settings(open_train_page(), str(tiny_dataset), epochs=300)
    at.button(key="train_start").click().run()
    os.kill(runs.read_lock(config.runs_dir())["pid"], signal.SIGKILL)
    rerun_until(at, lambda a: "failed" in a.subheader[0].value and not a.button(key="train_start").disabled, timeout=30)
    assert "Training failed" in at.error[0].value
    assert "catdog train" in at.code[0].value  # the log tail


def test_after_a_reload_the_settings_come_back_from_the_running_runs_config(home, tiny_dataset):
    run = runs.create_run(None, "reloaded")
    run.write_config({"model": "seed", "data": str(tiny_dataset), "epochs": 7, "batch_size": 4, "image_size": 48,
                      "learning_rate": 0.0005, "val_split": 0.25, "early_stopping": 2, "created": time.time()})
    run.write_status("queued", pid=os.getpid())
    runs.acquire_lock(run)
    try:
        at = open_train_page()  # a fresh session, as after a browser reload
    finally:
        runs.release_lock()
    assert not at.exception, at.exception
    assert at.text_input(key="train_data").value == str(tiny_dataset)
    assert at.selectbox(key="train_preset").value == "seed"
    assert at.number_input(key="train_epochs_seed").value == 7 and at.number_input(key="train_size_seed").value == 48
    assert at.toggle(key="train_early_seed_False").value and at.number_input(key="train_patience").value == 2
    assert "starting" in at.subheader[0].value and "queued" not in at.subheader[0].value


def _running_page(progress: dict, run_id: str = "live", state: str = "running") -> AppTest:
    """The Train page of a fresh session while a (pretend) training writes `progress` (this process holds the lock)."""
    run = runs.create_run(None, run_id, "lite0")
    run.write_config({"model": "lite0", "epochs": 30, "image_size": 224, "created": time.time()})
    run.write_status(state, pid=os.getpid(), started=time.time())
    run.write_progress({"updated": time.time(), **progress})
    runs.acquire_lock(run)
    try:
        at = open_train_page()
    finally:
        runs.release_lock()
    assert not at.exception, at.exception
    return at


def test_a_finishing_run_says_what_it_still_does_instead_of_100_percent_and_time_left(home):
    at = _running_page({"phase": "finishing", "epoch": 30, "epochs": 30, "batch": 1, "batches": 1, "overall": 1.0,
                        "eta_seconds": 11.0})
    text = at.get("progress")[0].proto.text
    assert "Training done after epoch 30" in text and "calibrating the confidence and saving the model" in text
    assert "100%" not in text and "left" not in text and re.search(r"\(about ([1-9]|1[01])s\)$", text)  # 11 s, less the page's own time
    overdue = _running_page({"phase": "finishing", "epoch": 30, "epochs": 30, "batch": 1, "batches": 1, "overall": 1.0,
                             "eta_seconds": 11.0, "updated": time.time() - 60}, run_id="overdue")
    assert "(about" not in overdue.get("progress")[0].proto.text  # an estimate that has passed is not shown as "1s"


def test_the_epochs_progress_gives_the_share_of_the_epochs_and_the_time_left(home):
    at = _running_page({"phase": "train", "epoch": 3, "epochs": 30, "batch": 1, "batches": 2, "overall": 0.0833,
                        "eta_seconds": 20.0})
    text = at.get("progress")[0].proto.text
    assert text.startswith("Epoch 3/30 · batch 1/2 · 8% of the epochs · about ") and text.endswith("s left")


def test_a_frozen_backbones_first_step_reads_as_preparing_the_photos(home):
    # A frozen backbone's run is still "queued" while it reads the photos (it is "running" once its epochs begin).
    at = _running_page({"phase": "features", "split": "validation", "done": 12, "total": 40, "overall": 0.0,
                        "eta_seconds": 3.0}, state="queued")
    bar = at.get("progress")[0].proto
    assert bar.value == 30  # percent: 12 of 40
    text = bar.text
    assert text.startswith("Preparing the validation photos: the pretrained network reads each one once (12 of 40) · about ")
    assert "skips this step" in text and "backbone" not in text


def test_a_photo_added_to_the_dataset_shows_in_the_next_visitors_count(home, tmp_path):
    from tests.fixtures import make_class_folders, write_image

    folder = make_class_folders(tmp_path / "photos", n=10)

    def count() -> str:
        at = open_train_page()
        at.text_input(key="train_data").set_value(str(folder)).run()
        return next(c.value for c in at.caption if "training images" in c.value)

    assert "20 training images" in count()
    write_image(folder / "dogs" / "new.jpg", seed=99)  # changes dogs/'s time, not the dataset folder's
    assert "21 training images" in count()
