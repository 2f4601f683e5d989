"""The model shipped in assets/model: loads on a fresh machine, is the default, and is good."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from catdog import config
from catdog.predict import Predictor, bundled_model_dir

BUNDLE = config.assets_dir() / "model"
# On catdog-small/validation: 0.9480, ECE 0.0126. The crop-augmented model traded 0.55 points here
# for +8.5 on close crops (assets/model/README.md).
MIN_ACCURACY, MAX_ECE = 0.945, 0.03
SAMPLES = sorted((config.assets_dir() / "samples").glob("*.jpg"))


def test_bundled_run_folder_is_complete_small_and_compact():
    assert bundled_model_dir() == BUNDLE
    for name in ("model.keras", "config.json", "metrics.jsonl", "status.json", "accuracy.png", "loss.png", "README.md"):
        assert (BUNDLE / name).is_file(), name
    assert (BUNDLE / "model.keras").stat().st_size < 5 * 1024 * 1024
    cfg = json.loads((BUNDLE / "config.json").read_text())
    assert cfg["model"] == "compact" and cfg["class_names"] == ["cat", "dog"]
    folders = cfg["data"] if isinstance(cfg["data"], list) else [cfg["data"]]
    assert not any("validation" in f for f in folders) and cfg.get("val_data") is None  # never trained on validation photos
    assert [Path(f["path"]).name for f in cfg["data_folders"]] == ["train", "petimages-extra"]
    assert cfg["calibration"]["temperature"] > 0 and cfg["calibration"]["fitted_on"] > 0  # fitted on held-out training photos
    assert json.loads((BUNDLE / "status.json").read_text())["state"] == "finished"


def test_with_no_model_chosen_predict_uses_the_bundle_and_gets_the_samples_right(monkeypatch, tmp_path):
    monkeypatch.setenv("CATDOG_HOME", str(tmp_path))  # no active model chosen
    predictor = Predictor.load()
    assert predictor.source == str((BUNDLE / "model.keras").resolve())
    assert len(SAMPLES) >= 6
    results = predictor.predict(SAMPLES)
    assert all(r.ok for r in results)
    assert [r.label for r in results] == [p.name.split("-")[0] for p in SAMPLES]  # cat-1.jpg -> cat
    # The demo's examples show a sure answer: none "Not sure", none taken for "not a cat or dog".
    assert [p.name for p, r in zip(SAMPLES, results) if r.uncertain or r.not_pet] == []


@pytest.mark.slow
@pytest.mark.realdata
def test_cli_evaluate_with_no_model_is_accurate_and_calibrated_on_the_real_validation_photos(shared_data, monkeypatch, tmp_path):
    from catdog.cli import main

    validation = shared_data / "validation"
    if not validation.is_dir():
        pytest.skip(f"{validation} is missing (real photos are not in the repo)")
    monkeypatch.setenv("CATDOG_HOME", str(tmp_path))
    out, err = io.StringIO(), io.StringIO()
    assert main(["evaluate", "--data", str(validation), "--json"], out=out, err=err) == 0, err.getvalue()
    summary = json.loads(out.getvalue())
    assert summary["model"] == str((BUNDLE / "model.keras").resolve())
    assert summary["n"] >= 1900
    assert summary["accuracy"] >= MIN_ACCURACY
    assert summary["ece"] <= MAX_ECE
