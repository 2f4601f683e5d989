"""Several training folders, calibration on held-out training photos, and warm starts."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest

from catdog.errors import DatasetError, RunError
from catdog.training import TrainConfig, init_weights_from, train
from tests.fixtures import REPO, make_class_folders


@pytest.fixture(scope="module")
def pooled_run(tmp_path_factory, tiny_dataset):
    second = make_class_folders(tmp_path_factory.mktemp("second") / "PetImages", n=10, names=("Cat", "Dog"))
    cfg = TrainConfig(
        data=[str(tiny_dataset), str(second)], model="compact", epochs=1, batch_size=8, image_size=32, val_split=0.2, precision="float32"
    )
    runs_dir = tmp_path_factory.mktemp("runs")
    return train(cfg, runs_dir=runs_dir, run_id="pooled", verbose=0, stream=io.StringIO(), lock=False, handle_signals=False)


@pytest.mark.slow
def test_several_folders_are_pooled_and_each_is_recorded_with_its_counts(pooled_run, tiny_dataset):
    cfg = pooled_run.config()
    folders = cfg["data_folders"]
    assert [f["path"] for f in folders][0] == str(tiny_dataset.resolve())
    assert folders[0]["train"] == {"cat": 12, "dog": 12}
    assert folders[1]["train"] == {"cat": 10, "dog": 10}
    assert isinstance(cfg["data"], list) and len(cfg["data"]) == 2
    assert cfg["n_train"] + cfg["n_validation"] + cfg["n_calibration"] == 44


@pytest.mark.slow
def test_calibration_is_fitted_on_held_out_training_photos_and_saved(pooled_run):
    cfg = pooled_run.config()
    calibration = cfg["calibration"]
    assert calibration["temperature"] > 0
    assert calibration["uncertain_below"] == 0.75
    assert calibration["fitted_on"] == cfg["n_calibration"] > 0
    assert {"ece_before", "ece_after", "log_loss_before", "log_loss_after"} <= set(calibration["validation"])


@pytest.mark.slow
def test_predict_json_uses_the_saved_calibration(pooled_run, tiny_dataset):
    from catdog.predict import Predictor

    config_path = pooled_run.path / "config.json"
    record = json.loads(config_path.read_text())
    record["calibration"]["temperature"] = 50.0  # flatten every confidence towards 0.5
    config_path.write_text(json.dumps(record))
    predictor = Predictor.load(pooled_run.path)
    image = next((tiny_dataset / "cats").iterdir())
    result = predictor.predict_one(image)
    assert predictor.temperature == 50.0
    assert result.confidence < 0.6 and result.uncertain
    out = subprocess.run(
        [sys.executable, "-m", "catdog", "predict", str(image), "--model", str(pooled_run.path), "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    line = json.loads(out.stdout.strip().splitlines()[-1])
    assert line["uncertain"] is True and line["label"] == result.label


@pytest.mark.slow
def test_init_from_copies_every_weight_of_a_finished_run(pooled_run):
    import keras

    from catdog.models import build_model

    model = build_model("compact", 32, compile=False)
    init_weights_from(model, str(pooled_run.path))
    trained = keras.saving.load_model(pooled_run.model_path, compile=False)
    for a, b in zip(model.get_weights(), trained.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_init_from_another_network_is_refused_with_a_clear_message(pooled_run):
    from catdog.models import build_model

    with pytest.raises(RunError, match="network differs"):
        init_weights_from(build_model("seed", 32, compile=False), str(pooled_run.path))


@pytest.mark.slow
def test_warm_start_trains_at_a_tenth_of_the_learning_rate_and_records_its_source(pooled_run, tiny_dataset, tmp_path):
    cfg = TrainConfig(data=str(tiny_dataset), model="compact", epochs=1, batch_size=8, image_size=32, val_split=0.25,
                      init_from=str(pooled_run.path), precision="float32")
    run = train(cfg, runs_dir=tmp_path, run_id="warm", verbose=0, stream=io.StringIO(), lock=False, handle_signals=False)
    record = run.config()
    assert record["init_from"] == str(pooled_run.model_path)
    assert record["learning_rate"] == pytest.approx(2e-4)
    assert run.status()["state"] == "finished"


def test_unknown_init_from_is_refused_before_any_run_folder_exists(tiny_dataset, tmp_path):
    cfg = TrainConfig(data=str(tiny_dataset), epochs=1, image_size=32, init_from=str(tmp_path / "nope"))
    with pytest.raises(RunError, match="not found"):
        train(cfg, runs_dir=tmp_path / "runs", verbose=0, stream=io.StringIO(), lock=False, handle_signals=False)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_folders_with_different_classes_cannot_be_pooled(tiny_dataset, tmp_path):
    other = make_class_folders(tmp_path / "birds", n=4, names=("ducks", "geese"))
    cfg = TrainConfig(data=[str(tiny_dataset), str(other)], epochs=1, image_size=32)
    with pytest.raises(DatasetError, match="same class folders"):
        train(cfg, runs_dir=tmp_path / "runs", verbose=0, stream=io.StringIO(), lock=False, handle_signals=False)


def test_cli_accepts_data_twice(tmp_path, tiny_dataset):
    from catdog.cli import build_parser

    args = build_parser().parse_args(["train", "--data", "A", "--data", "B", "--init-from", "bundled", "--no-ema"])
    assert args.data == ["A", "B"] and args.init_from == "bundled" and args.ema is False


def test_progressive_phases_put_the_last_quarter_at_full_size():
    from catdog.training import progressive_phases

    assert progressive_phases(40, 160, 128) == [(128, 0, 30), (160, 30, 40)]
    assert progressive_phases(3, 160, 128) == [(128, 0, 2), (160, 2, 3)]
    assert progressive_phases(10, 160, None) == [(160, 0, 10)]


@pytest.mark.slow
def test_progressive_resizing_ends_with_a_full_size_model_and_every_epoch_once(tiny_dataset, tmp_path):
    import keras

    cfg = TrainConfig(data=str(tiny_dataset), model="compact", epochs=4, batch_size=8, image_size=48, progressive_size=32,
                      val_split=0.25, precision="float32")
    run = train(cfg, runs_dir=tmp_path, run_id="prog", verbose=0, stream=io.StringIO(), lock=False, handle_signals=False)
    assert [r["epoch"] for r in run.metrics()] == [1, 2, 3, 4]
    assert keras.saving.load_model(run.model_path, compile=False).input_shape[1:3] == (48, 48)
    assert run.config()["progressive_size"] == 32


def test_progressive_size_must_be_smaller_than_the_image_size():
    with pytest.raises(ValueError, match="progressive_size"):
        TrainConfig(data="x", model="compact", image_size=64, progressive_size=64).validate()
