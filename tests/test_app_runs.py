"""Runs page (AppTest): the table, the comparison chart, and delete with confirmation."""

from __future__ import annotations

import json
import os
import time

import pytest
from streamlit.testing.v1 import AppTest

from catdog import runs
from tests.fixtures import REPO, shown

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


def run_cards(at: AppTest) -> dict[str, str]:
    """{run id: its card's text} (a run card is one Markdown block that opens with the id and the state)."""
    cards = [m.value for m in at.markdown if m.value.startswith("`") and "validation accuracy" in m.value]
    return {card.split("`")[1]: card for card in cards}


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
    cards = run_cards(at)
    assert set(cards) == {"alpha", "beta"}
    assert "validation accuracy **65.0%**" in cards["alpha"]  # the saved (last) epoch's, not the best one's 70.0%
    assert "`alpha` · finished" in cards["alpha"] and "3/3 epochs in 1m 00s" in cards["alpha"]
    assert "seed · 32px" in shown(cards["alpha"])
    assert "`beta` · failed" in cards["beta"]


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
    assert list(run_cards(at)) == ["keep"]
    assert at.selectbox(key="runs_detail").value == "keep"  # the details box no longer names the deleted run


def test_a_running_run_cannot_be_deleted_from_the_page(home):
    run = make_run("busy", [0.6], state="running")
    run.write_status("running", pid=os.getpid())  # alive: this test process
    at = open_runs_page()
    assert not [b for b in at.button if b.key == "runs_delete_busy"]
    assert any("stop it on the Train page" in c.value for c in at.caption)


def model_cards(at: AppTest) -> list[str]:
    """Each model card's first line (its name, and whether Predict uses it)."""
    return [m.value for m in at.markdown if m.value.startswith("`")]


def test_models_are_cards_with_the_bundled_one_always_and_the_active_one_marked(home):
    import zipfile

    from catdog import predict

    run = make_run("mine", [0.6, 0.7])
    with zipfile.ZipFile(run.model_path, "w") as zf:  # enough of a .keras archive to be made active (never loaded)
        zf.writestr("config.json", "{}")
    predict.set_active_model(run.path)
    at = open_runs_page()
    cards = model_cards(at)
    assert [card.split("`")[1] for card in cards[:2]] == ["bundled", "mine"]
    assert "used by Predict" in cards[1] and "used by Predict" not in cards[0]
    assert "used by Predict" in run_cards(at)["mine"]
    assert not at.dataframe  # cards only: no table to scroll sideways


def test_each_run_is_a_card_with_its_accuracy_and_epochs(home):
    make_run("alpha", [0.6, 0.7])
    at = open_runs_page()
    card = run_cards(at)["alpha"]
    assert "finished" in card and "validation accuracy **70.0%**" in card and "2/2 epochs" in card


def test_a_finished_run_builds_its_report_and_offers_the_download(home):
    run = make_run("done", [0.6, 0.7])
    at = open_runs_page()
    at.button(key="runs_report_build_done").click().run()
    assert not at.exception, at.exception
    assert (run.path / "report.html").exists()
    assert [b for b in at.get("download_button") if "report" in b.proto.label.lower()]


def test_each_model_says_its_not_a_cat_or_dog_check_in_words_with_the_details_folded(home):
    from catdog.catalog import bundled_entry
    from tests.fixtures import shown

    make_run("plain", [0.6, 0.7]).model_path.write_bytes(b"")  # listed, never loaded
    at = open_runs_page()
    captions = [shown(c.value) for c in at.caption]
    assert "No “not a cat or dog” check: it answers cat or dog for any photo, whatever is in it." in captions
    bundled = bundled_entry()
    assert bundled.openset_summary in captions and "wrongly flags about 1 in " in bundled.openset_summary
    assert not any(c.startswith("threshold") for c in captions if "Says" in c)  # no jargon in the words
    details = next(e for e in at.expander if e.label == "How the check decides")
    cfg = json.loads((REPO / "assets" / "model" / "config.json").read_text())["openset"]
    assert f"threshold {cfg['threshold']:.3g} · flags {cfg['held_out_flagged']:.1%} of " in shown(details.caption[0].value)


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
