"""Train page (AppTest): the warm-start default, several folders, and the near-chance warning."""

from __future__ import annotations

import json

import pytest

from catdog import jobs, runs
from catdog.predict import bundled_model_dir
from tests.fixtures import make_class_folders, shown
from tests.test_app_train import open_train_page, rerun_until

BUNDLED = runs.read_json(bundled_model_dir() / "config.json", {}) if bundled_model_dir() else {}
needs_bundled = pytest.mark.skipif(not BUNDLED, reason="assets/model (the bundled model) is missing")


@pytest.mark.slow
def test_photos_the_bundled_model_trained_on_are_named_before_start(home, tiny_dataset, tmp_path, monkeypatch):
    """A warm start on the bundled model's own photos: said before Start (its before -> after would show nothing)."""
    import shutil

    from catdog import model_files, provenance
    from catdog.data import discover

    fake = tmp_path / "bundle"
    shutil.copytree(bundled_model_dir(), fake)
    provenance.save(fake, provenance.file_fingerprints(discover(tiny_dataset).train.paths[:10]))
    monkeypatch.setattr(model_files, "bundled_model_dir", lambda: fake)
    at = open_train_page()
    at.text_input(key="train_data").set_value(str(tiny_dataset)).run()
    assert warm_toggle(at).value is True
    assert any("already trained on 10 of these 24 photos" in shown(w.value) for w in at.warning), [w.value for w in at.warning]
    warm_toggle(at).set_value(False).run()
    assert not any("already trained on" in shown(w.value) for w in at.warning)


def warm_toggle(at):
    return next(t for t in at.toggle if t.label == "Start from the bundled model")


@needs_bundled
def test_warm_start_is_the_default_for_a_two_class_dataset_at_the_bundled_size(home, tiny_dataset):
    at = open_train_page()
    at.text_input(key="train_data").set_value(str(tiny_dataset)).run()
    assert at.selectbox(key="train_preset").value == BUNDLED["preset"]
    toggle = warm_toggle(at)
    assert toggle.value is True and not toggle.disabled
    lr = next(n for n in at.number_input if n.label == "Learning rate")
    assert lr.value == pytest.approx(BUNDLED_LR() / 10)

    # Another image size than the bundled model's: the warm start is off and explained.
    at.number_input(key=f"train_size_{BUNDLED['preset']}").set_value(BUNDLED["image_size"] + 32).run()
    assert warm_toggle(at).value is False and warm_toggle(at).disabled
    assert any("starts from scratch" in c.value for c in at.caption)


def BUNDLED_LR() -> float:  # noqa: N802 - reads like the constant it stands for
    from catdog.models import get_preset

    return get_preset(BUNDLED["preset"]).learning_rate


@needs_bundled
@pytest.mark.slow
def test_starting_with_the_default_warm_start_records_the_bundled_model(home, tiny_dataset, tmp_path):
    second = make_class_folders(tmp_path / "more", n=6)
    at = open_train_page()
    at.text_input(key="train_data").set_value(str(tiny_dataset)).run()
    at.text_area(key="train_data_more").set_value(str(second)).run()
    assert any("2 folders" in c.value for c in at.caption)
    from catdog.training import default_epochs

    epochs = at.number_input(key=f"train_epochs_{BUNDLED['preset']}_warm")
    assert epochs.value == default_epochs(BUNDLED["preset"], warm=True)
    epochs.set_value(1).run()
    at.button(key="train_start").click().run()
    assert not at.exception
    run = jobs.active_run()
    assert run is not None
    # Wait for what the user waits for: the page shows the run's end and offers Start again. status.json says
    # "finished" a moment before the process lets go of the runs lock; until then the page still shows it live.
    rerun_until(at, lambda a: any(s in a.subheader[0].value for s in ("finished", "failed", "stopped"))
                and not a.button(key="train_start").disabled, timeout=300)
    cfg = run.config()
    assert run.status()["state"] == "finished", run.status()
    start = str((bundled_model_dir() / "model.keras").resolve())
    assert cfg["init_from"] == start
    assert [f["train"] for f in cfg["data_folders"]] == [{"cat": 12, "dog": 12}, {"cat": 6, "dog": 6}]
    # The starting model was scored on the run's validation photos before the first epoch.
    before = cfg["before"]
    assert before["model"] == start and before["n"] == cfg["n_validation"] and 0.0 <= before["val_accuracy"] <= 1.0
    accuracy = json.loads(at.get("plotly_chart")[0].proto.spec)
    point = next(t for t in accuracy["data"] if t["name"] == "before training")
    assert point["x"] == [0] and point["y"] == [pytest.approx(before["val_accuracy"])]
    expected = f"{before['val_accuracy']:.1%} before training → "
    assert any(expected in m.value for m in at.markdown), (expected, [m.value for m in at.markdown])
    # A handful of calibration photos: the bundled model's temperature is kept, never a search bound.
    assert cfg["calibration"]["temperature"] == pytest.approx(BUNDLED["calibration"]["temperature"])
    assert cfg["calibration"]["method"].startswith("kept the starting model's temperature")


def test_a_run_stuck_at_chance_gets_a_warning_with_advice(home, tmp_path):
    run = runs.create_run(None, "stuck", "compact")
    run.write_config({"model": "compact", "class_names": ["cat", "dog"], "image_size": 160, "epochs": 3})
    run.write_metrics(
        [{"epoch": e, "accuracy": 0.5, "val_accuracy": 0.5, "loss": 0.69, "val_loss": 0.69, "seconds": 1.0} for e in (1, 2, 3)]
    )
    run.write_status("finished", ended=1.0)
    at = open_train_page()
    at.session_state["train_run"] = str(run.path)
    at.run()
    warning = " ".join(w.value for w in at.warning)
    assert "near chance" in warning and "Start from the bundled model" in warning
    json.loads((run.path / "config.json").read_text())  # untouched and readable


@needs_bundled
def test_a_refused_dataset_gives_the_warm_start_no_unrelated_reason(home, tmp_path, monkeypatch):
    outside = make_class_folders(tmp_path / "outside", n=3)
    monkeypatch.setenv("CATDOG_DATA_ROOTS", str(tmp_path / "root"))
    at = open_train_page()
    at.text_input(key="train_data").set_value(str(outside)).run()
    assert "outside the allowed folders" in at.error[0].value
    captions = " ".join(c.value for c in at.caption)
    assert "preset and image size" not in captions and "dataset folder above" in captions
    assert warm_toggle(at).disabled


def _finished_warm_run(run_id: str = "warm"):
    """A finished warm start as the training leaves it: `before` recorded, calibration kept, model saved."""
    run = runs.create_run(None, run_id, "compact")
    run.write_config({
        "model": "compact", "class_names": ["cat", "dog"], "image_size": 160, "epochs": 3, "init_from": "/x/model.keras",
        "n_train": 216, "n_validation": 60, "n_calibration": 24,
        "before": {"val_accuracy": 0.8, "val_loss": 0.45, "n": 60, "model": "/x/model.keras"},
        "calibration": {"temperature": 1.62, "method": "kept the starting model's temperature (24 photos are too few to fit one)"},
    })
    run.write_metrics([{"epoch": e, "accuracy": a, "val_accuracy": a, "loss": 0.3, "val_loss": 0.3, "seconds": 1.0}
                       for e, a in ((1, 0.85), (2, 0.9), (3, 0.9166667))])
    run.write_status("finished", ended=2.0, started=1.0)
    return run


def test_a_warm_start_draws_the_before_training_point_and_shows_before_to_after(home):
    run = _finished_warm_run()
    at = open_train_page()
    at.session_state["train_run"] = str(run.path)
    at.run()
    assert not at.exception, at.exception
    accuracy = json.loads(at.get("plotly_chart")[0].proto.spec)
    before = [t for t in accuracy["data"] if t["name"] == "before training"]
    assert len(before) == 1 and before[0]["x"] == [0] and before[0]["y"] == [0.8]
    validation = next(t for t in accuracy["data"] if t["name"] == "validation")
    assert validation["x"][:2] == [0, 1] and validation["y"][0] == 0.8  # the curve starts at the starting model
    assert any("80.0% before training → 91.7% after, on 60 validation photos" in m.value for m in at.markdown)
    # Six cards of short labels (140 px each, gap small): one row at 1440 px, never cut off to "Val accuracy before…".
    assert [m.label for m in at.metric] == ["Epoch", "Before training", "Train accuracy", "Val accuracy", "Train loss", "Val loss"]
    assert at.metric[1].value == "80.0%"
    assert any("216 to train · 60 to validate · 24 to calibrate" in c.value for c in at.caption)
    assert any("kept the starting model's temperature" in shown(c.value) for c in at.caption)  # config.json's words, through plain()


def test_the_page_says_how_the_photos_will_be_split_before_starting(home, tmp_path):
    folder = make_class_folders(tmp_path / "photos", n=150)
    at = open_train_page()
    at.text_input(key="train_data").set_value(str(folder)).run()
    assert any(c.value == "216 to train · 60 to validate · 24 to calibrate" for c in at.caption), [c.value for c in at.caption]
