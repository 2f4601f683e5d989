"""Runs page (AppTest): the table, the comparison chart, and delete with confirmation."""

from __future__ import annotations

import json
import os
import time

import pytest
from streamlit.testing.v1 import AppTest

from catdog import runs
from tests.fixtures import REPO

pytestmark = pytest.mark.slow  # TensorFlow models or trainings; `pytest -m "not slow"` leaves them out

TIMEOUT = 60


def open_runs_page() -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT).run()
    return at.switch_page("pages/runs.py").run()


def make_run(run_id: str, val_acc: list[float], state: str = "finished", preset: str = "seed") -> runs.Run:
    """A run folder as a training leaves it (no TensorFlow needed to read it)."""
    run = runs.create_run(None, run_id, preset)
    run.write_config(
        {"model": preset, "created": time.time(), "epochs": len(val_acc), "image_size": 32, "batch_size": 8, "learning_rate": 0.001}
    )
    run.write_metrics([
        {"epoch": i + 1, "accuracy": a + 0.05, "val_accuracy": a, "loss": 1 - a, "val_loss": 1.1 - a, "seconds": 1.0}
        for i, a in enumerate(val_acc)
    ])
    run.write_status(state, pid=1, started=time.time() - 65, ended=time.time() - 5, error="out of memory" if state == "failed" else None)
    return run


def runs_table(at: AppTest):
    """The runs table (the models table comes first)."""
    return next(d.value for d in at.dataframe if "run" in d.value.columns)


def chart_traces(at: AppTest, index: int) -> list[str]:
    return [trace["name"] for trace in json.loads(at.get("plotly_chart")[index].proto.spec)["data"]]


def test_no_runs_points_to_the_train_page(home):
    at = open_runs_page()
    assert not at.exception
    assert "No runs yet" in at.info[0].value


def test_runs_table_lists_every_run_with_its_saved_models_accuracy_and_status(home):
    make_run("alpha", [0.6, 0.7, 0.65])
    make_run("beta", [0.5], state="failed")
    at = open_runs_page()
    assert not at.exception
    table = runs_table(at)
    assert set(table["run"]) == {"alpha", "beta"}
    alpha = table[table["run"] == "alpha"].iloc[0]
    assert alpha["val acc"] == pytest.approx(0.65)  # the saved (last) epoch's, not the best one's 0.7
    assert "finished" in alpha["status"] and alpha["preset"] == "seed" and alpha["epochs"] == "3/3"
    assert alpha["duration"] == "1m 00s"
    assert "failed" in table[table["run"] == "beta"].iloc[0]["status"]


def test_comparison_chart_overlays_the_picked_runs(home):
    make_run("alpha", [0.6, 0.7])
    make_run("beta", [0.5, 0.55])
    make_run("gamma", [0.8, 0.9])
    at = open_runs_page()
    at.multiselect(key="runs_compare").set_value(["alpha", "gamma"]).run()
    names = chart_traces(at, 0)
    assert len(names) == 2 and "(alpha)" in names[0] + names[1] and "(gamma)" in names[0] + names[1]
    assert any(name.startswith("seed 32px 90.0%") for name in names)  # readable: preset, size, best accuracy
    at.selectbox(key="runs_metric").set_value("val_loss").run()
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert "Validation loss" in spec["layout"]["title"]["text"]
    alpha = next(t for t in spec["data"] if "(alpha)" in t["name"])
    assert alpha["y"] == pytest.approx([0.5, 0.4])


def test_details_show_the_chosen_runs_curves_and_failure(home):
    make_run("alpha", [0.6, 0.7])
    make_run("broken", [0.5], state="failed")
    at = open_runs_page()
    at.selectbox(key="runs_detail").set_value("broken").run()
    assert "Accuracy · broken" in json.loads(at.get("plotly_chart")[1].proto.spec)["layout"]["title"]["text"]
    assert any("out of memory" in e.value for e in at.error)


def test_delete_asks_for_confirmation_and_cancel_keeps_the_run(home):
    keep = make_run("keep", [0.6])
    gone = make_run("gone", [0.7])
    at = open_runs_page()
    at.selectbox(key="runs_detail").set_value("keep").run()
    at.button(key="runs_delete_keep").click().run()
    assert "cannot be undone" in at.warning[0].value
    at.button(key="runs_delete_no").click().run()
    assert keep.path.exists() and not at.warning
    at.selectbox(key="runs_detail").set_value("gone").run()
    at.button(key="runs_delete_gone").click().run()
    assert gone.path.exists()  # nothing happens before the confirmation
    at.button(key="runs_delete_yes").click().run()
    assert not at.exception
    assert not gone.path.exists() and keep.path.exists()
    assert list(runs_table(at)["run"]) == ["keep"]
    assert at.selectbox(key="runs_detail").value == "keep"  # the details box no longer names the deleted run


def test_a_running_run_cannot_be_deleted_from_the_page(home):
    run = make_run("busy", [0.6], state="running")
    run.write_status("running", pid=os.getpid())  # alive: this test process
    at = open_runs_page()
    assert not [b for b in at.button if b.key == "runs_delete_busy"]
    assert any("stop it on the Train page" in c.value for c in at.caption)


def test_models_table_always_lists_the_bundled_model_and_marks_the_active_one(home):
    import zipfile

    from catdog import predict

    run = make_run("mine", [0.6, 0.7])
    with zipfile.ZipFile(run.model_path, "w") as zf:  # enough of a .keras archive to be made active (never loaded)
        zf.writestr("config.json", "{}")
    predict.set_active_model(run.path)
    at = open_runs_page()
    models = at.dataframe[0].value
    assert list(models["model"]) == ["bundled", "mine"]
    assert models[models["model"] == "mine"].iloc[0]["active"] == "✓"
    assert models[models["model"] == "bundled"].iloc[0]["active"] == ""


def test_a_finished_run_builds_its_report_and_offers_the_download(home):
    run = make_run("done", [0.6, 0.7])
    at = open_runs_page()
    at.button(key="runs_report_build_done").click().run()
    assert not at.exception, at.exception
    assert (run.path / "report.html").exists()
    assert [b for b in at.get("download_button") if "report" in b.proto.label.lower()]


def test_models_table_says_which_models_have_a_not_a_cat_or_dog_check(home):
    make_run("plain", [0.6, 0.7]).model_path.write_bytes(b"")  # listed, never loaded
    at = open_runs_page()
    models = at.dataframe[0].value
    checks = dict(zip(models["model"], models["not a cat or dog"]))
    assert checks["plain"].startswith("none, so it answers cat or dog for any photo")
    bundled = json.loads((REPO / "assets" / "model" / "config.json").read_text())["openset"]
    assert checks["bundled"].startswith(f"threshold {bundled['threshold']:.3g} · flags {bundled['held_out_flagged']:.1%} of ")


def test_the_report_builder_takes_a_folder_of_non_pets(home, run_with_check):
    import shutil

    from catdog import config

    run_dir, _, negatives, _ = run_with_check
    shutil.copytree(run_dir, config.runs_dir() / "checked")
    at = open_runs_page()
    at.selectbox(key="runs_detail").set_value("checked").run()
    at.text_input(key="runs_report_not_pets_checked").set_value(str(negatives)).run()
    at.button(key="runs_report_build_checked").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    text = (config.runs_dir() / "checked" / "report.html").read_text(encoding="utf-8")
    assert "<span>Non-pets flagged</span>" in text and f"of 6 photos in {negatives}" in text
