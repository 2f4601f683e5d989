"""A run against the current model on the same photos (catdog.compare, catalog.replace_check)."""

from __future__ import annotations

import zipfile

import pytest

from catdog import catalog, compare, runs
from catdog.predict import bundled_model_dir
from tests.fixtures import make_class_folders

needs_bundled = pytest.mark.skipif(bundled_model_dir() is None, reason="assets/model (the bundled model) is missing")


def _warm_run(run_id: str, before: float, after: list[float], n: int = 60):
    run = runs.create_run(None, run_id, "compact")
    start = str((bundled_model_dir() / "model.keras").resolve())
    run.write_config({"model": "compact", "image_size": 160, "class_names": ["cat", "dog"], "init_from": start, "n_validation": n,
                      "before": {"val_accuracy": before, "val_loss": 0.4, "n": n, "model": start}})
    run.write_metrics([{"epoch": i + 1, "val_accuracy": a} for i, a in enumerate(after)])
    run.write_status("finished")
    with zipfile.ZipFile(run.model_path, "w") as zf:  # enough of a .keras archive to be listed (never loaded)
        zf.writestr("config.json", "{}")
    return run


def test_before_after_reads_the_starting_and_the_saved_models_figures(home):
    run = _warm_run("w", 0.8, [0.85, 0.95, 0.9])
    assert compare.before_after(run) == (0.8, 0.9, 60)  # the saved (last) epoch, not the best
    assert compare.before_after_text(run) == "80.0% before training → 90.0% after, on 60 validation photos"
    plain = runs.create_run(None, "scratch", "seed")
    plain.write_config({"model": "seed"})
    assert compare.before_after(plain) is None and compare.before_after_text(plain) is None


@needs_bundled
def test_replacing_the_starting_model_compares_both_on_the_runs_own_photos(home):
    worse = _warm_run("worse", 0.95, [0.9])
    confirm, _ = catalog.replace_check(worse)
    assert confirm and "On this run's 60 validation photos" in confirm and "95.0%" in confirm and "90.0%" in confirm
    # Better on its own photos than the bundled model there, though under the bundled model's 1,999-photo figure.
    better = _warm_run("better", 0.8, [0.9])
    assert catalog.bundled_entry().accuracy > 0.9
    assert catalog.replace_check(better) == (None, None)


@needs_bundled
@pytest.mark.slow
def test_another_current_model_is_scored_on_the_runs_validation_photos_once(home, tmp_path, monkeypatch):
    folder = make_class_folders(tmp_path / "photos", n=3, size=(64, 64))
    run = _warm_run("other", 0.5, [1.0])
    images = sorted(folder.rglob("*.jpg"))
    compare.write_validation_photos(run, images, [0 if p.parent.name == "cats" else 1 for p in images])
    run.write_config({**run.config(), "before": {}})  # started from something else: no `before` figure to reuse
    bundled = (bundled_model_dir() / "model.keras").resolve()
    assert compare.same_photos(run, bundled) is None  # not measured unless asked
    same = compare.same_photos(run, bundled, measure=True)
    assert same is not None and same.n == 6 and same.new == 1.0 and 0.0 <= same.current <= 1.0
    monkeypatch.setattr(compare, "_accuracy", lambda *a: pytest.fail("scored twice"))
    assert compare.same_photos(run, bundled, measure=True) == same  # cached in comparisons.json


def test_with_early_stopping_the_saved_models_figure_is_the_lowest_loss_epochs(home):
    """Keras restores the weights of the lowest val_loss, which need not be the best val_accuracy."""
    run = _warm_run("es", 0.8, [])
    run.write_config({**run.config(), "early_stopping": 3})
    run.write_metrics([{"epoch": 1, "val_accuracy": 0.9, "val_loss": 0.40}, {"epoch": 2, "val_accuracy": 0.85, "val_loss": 0.30},
                       {"epoch": 3, "val_accuracy": 0.95, "val_loss": 0.35}])
    assert run.model_val_accuracy() == 0.85
    assert compare.before_after(run) == (0.8, 0.85, 60)
