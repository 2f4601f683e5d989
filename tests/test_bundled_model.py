"""The model shipped in assets/model: loads on a fresh machine, is the default, and is good."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from catdog import config
from catdog.predict import Predictor, bundled_model_dir

BUNDLE = config.assets_dir() / "model"
# The lite0 bundle on catdog-small/validation: 0.9885, ECE 0.0066, 1.3% of the pets flagged (assets/model/README.md);
# the bar: at least 0.985, ECE at most 0.015, at most 2% of pets flagged, at least 97% of objects flagged.
MIN_ACCURACY, MAX_ECE, MAX_PETS_FLAGGED, MIN_OBJECTS_FLAGGED = 0.985, 0.015, 0.02, 0.97
SAMPLES = sorted((config.assets_dir() / "samples").glob("*.jpg"))


def test_bundled_run_folder_is_complete_and_ships_the_network_once():
    assert bundled_model_dir() == BUNDLE
    for name in ("model.keras", "config.json", "metrics.jsonl", "status.json", "accuracy.png", "loss.png", "README.md", "openset.npz"):
        assert (BUNDLE / name).is_file(), name
    assert (BUNDLE / "model.keras").stat().st_size < 25 * 1024 * 1024  # EfficientNet-Lite0: 4.7M float32 values
    assert not (BUNDLE / "model.onnx").exists()  # rebuilt from model.keras and cached, not shipped twice
    cfg = json.loads((BUNDLE / "config.json").read_text())
    assert cfg["model"] == "lite0" and cfg["class_names"] == ["cat", "dog"] and cfg["image_size"] == 224
    assert cfg["openset"]["parts"] == ["imagenet"]
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
    wrongly = summary["not_pet_wrongly_flagged"]
    assert wrongly["flagged"] / wrongly["n"] <= MAX_PETS_FLAGGED


@pytest.mark.slow
@pytest.mark.realdata
def test_the_bundled_check_never_saw_objects_and_flags_them(monkeypatch, tmp_path):
    from catdog.cli import main

    objects = Path(__file__).resolve().parents[2] / "shared" / "data" / "not-pets" / "objects"
    if not objects.is_dir():
        pytest.skip(f"{objects} is missing (real photos are not in the repo)")
    monkeypatch.setenv("CATDOG_HOME", str(tmp_path))
    out, err = io.StringIO(), io.StringIO()
    assert main(["evaluate", "--not-pets", str(objects), "--json"], out=out, err=err) == 0, err.getvalue()
    result = json.loads(out.getvalue())["not_pets"]
    assert "objects" not in json.dumps(json.loads((BUNDLE / "config.json").read_text())["openset"])  # fitted without them
    assert result["flagged"] / result["n"] >= MIN_OBJECTS_FLAGGED, result
