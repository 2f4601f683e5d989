"""The model presets: tiny builds, inference behaviour, offline weights, training end to end."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # TensorFlow models or trainings; `pytest -m "not slow"` leaves them out


@pytest.fixture(autouse=True)
def _no_pretrained_download(monkeypatch):
    monkeypatch.setenv("CATDOG_PRETRAINED", "0")
    monkeypatch.delenv("CATDOG_MOBILENETV2_WEIGHTS", raising=False)


@pytest.mark.parametrize("preset", ["compact", "mobilenetv2"])
def test_preset_builds_tiny_takes_uint8_and_outputs_probabilities(preset):
    from catdog.models import build_model

    model = build_model(preset, 32)
    assert model.input_shape == (None, 32, 32, 3)
    batch = np.random.default_rng(0).integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    out = np.asarray(model(batch, training=False))
    assert out.shape == (3, 1) and out.dtype == np.float32
    assert ((out >= 0) & (out <= 1)).all()


@pytest.mark.parametrize("preset", ["compact", "mobilenetv2"])
def test_augmentation_is_inactive_at_inference_but_active_in_training(preset):
    from catdog.models import build_model

    model = build_model(preset, 32, compile=False)
    batch = np.random.default_rng(1).integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(model(batch, training=False)), np.asarray(model(batch, training=False)))
    aug = [layer for layer in model.layers if layer.name.startswith("aug_")]
    assert aug, "the preset should carry its augmentation layers"
    x = batch.astype("float32") / 255
    for layer in aug:
        x = layer(x, training=True)
    assert not np.allclose(np.asarray(x), batch.astype("float32") / 255)


def test_mobilenetv2_backbone_is_frozen_and_scales_input_to_minus1_1():
    from catdog.models import build_model

    model = build_model("mobilenetv2", 32, compile=False)
    backbone = model.get_layer("backbone")
    assert not backbone.trainable and backbone.count_params() > 2_000_000
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 1280 + 1  # only the sigmoid head
    scale = model.get_layer("to_minus1_1")
    assert np.allclose(np.asarray(scale(np.array([0.0, 0.5, 1.0]))), [-1.0, 0.0, 1.0])


def test_offline_weights_download_is_a_clear_catdog_error(monkeypatch):
    import keras

    from catdog.errors import CatdogError
    from catdog.models import build_model

    monkeypatch.setenv("CATDOG_PRETRAINED", "1")

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    monkeypatch.setattr("keras.src.applications.mobilenet_v2.file_utils.get_file", offline)
    with pytest.raises(CatdogError) as info:
        build_model("mobilenetv2", 160, compile=False)
    message = str(info.value)
    assert "ImageNet weights for mobilenetv2 could not be downloaded" in message
    assert "CATDOG_MOBILENETV2_WEIGHTS=" in message and "compact preset" in message


def test_weights_env_pointing_nowhere_is_a_clear_error(monkeypatch, tmp_path):
    from catdog.errors import CatdogError
    from catdog.models import build_model

    monkeypatch.setenv("CATDOG_MOBILENETV2_WEIGHTS", str(tmp_path / "missing.h5"))
    with pytest.raises(CatdogError, match="is not a file"):
        build_model("mobilenetv2", 160, compile=False)


def test_cli_train_mobilenetv2_offline_prints_error_not_traceback(monkeypatch, tmp_path, tiny_dataset):
    from catdog.cli import main

    monkeypatch.setenv("CATDOG_PRETRAINED", "1")
    monkeypatch.setattr(
        "keras.src.applications.mobilenet_v2.file_utils.get_file", lambda *a, **k: (_ for _ in ()).throw(OSError("offline"))
    )
    err = io.StringIO()
    code = main(
        ["train", "--data", str(tiny_dataset), "--model", "mobilenetv2", "--epochs", "1", "--runs-dir", str(tmp_path), "--no-lock"],
        out=io.StringIO(),
        err=err,
    )
    assert code == 2 and err.getvalue().startswith("error: ImageNet weights for mobilenetv2")
    assert "Traceback" not in err.getvalue()


def test_compact_trains_one_epoch_end_to_end(tmp_path, tiny_dataset):
    from catdog.predict import Predictor
    from catdog.training import TrainConfig, train

    cfg = TrainConfig(data=str(tiny_dataset), model="compact", epochs=1, batch_size=8, image_size=32, val_split=0.25, precision="float32")
    run = train(cfg, runs_dir=tmp_path, run_id="compact", verbose=0, stream=io.StringIO(), lock=False, handle_signals=False)
    assert run.status()["state"] == "finished"
    rows = run.metrics()
    assert [r["epoch"] for r in rows] == [1] and rows[0]["val_accuracy"] is not None
    assert json.loads((run.path / "config.json").read_text())["lr_schedule"] == "cosine"
    assert Predictor.load(run.path).predict_arrays(np.zeros((1, 32, 32, 3), np.uint8)).shape == (1,)


def test_mobilenetv2_fine_tunes_after_frozen_phase_with_continuous_epochs(tmp_path, tiny_dataset, monkeypatch):
    import dataclasses
    import re

    import keras

    from catdog import models
    from catdog.training import TrainConfig, train

    spec = models.PRESETS["mobilenetv2"]
    monkeypatch.setitem(models.PRESETS, "mobilenetv2", dataclasses.replace(spec, fine_tune_epochs=1, fine_tune_layers=5))
    cfg = TrainConfig(
        data=str(tiny_dataset), model="mobilenetv2", epochs=1, batch_size=8, image_size=32, val_split=0.25, precision="float32"
    )
    seen = []

    class Watch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            layers = self.model.get_layer("backbone").layers
            trains = [layer.trainable and bool(layer.trainable_weights) for layer in layers]
            bn_trains = any(t for layer, t in zip(layers, trains) if type(layer).__name__ == "BatchNormalization")
            seen.append((not any(trains[:-5]) and not bn_trains, any(trains[-5:])))

    log = io.StringIO()
    run = train(cfg, runs_dir=tmp_path, run_id="mnv2", callbacks=[Watch()], verbose=0, stream=log, lock=False, handle_signals=False)
    rows = run.metrics()
    assert [r["epoch"] for r in rows] == [1, 2]
    assert re.search(r"Fine-tuning: [1-5] backbone layers unfrozen, learning rate 0\.0001, 1 more epochs", log.getvalue())
    # (lower layers and every BatchNorm frozen, some top layer trains) per epoch
    assert seen == [(True, False), (True, True)]
    assert run.status()["state"] == "finished"
