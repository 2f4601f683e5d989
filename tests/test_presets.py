"""The model presets: tiny builds, inference behaviour, offline weights, training end to end."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # TensorFlow models or trainings; `pytest -m "not slow"` leaves them out


@pytest.mark.parametrize("preset", ["compact", "lite0"])
def test_preset_builds_tiny_takes_uint8_and_outputs_probabilities(preset):
    from catdog.models import build_model

    model = build_model(preset, 32)
    assert model.input_shape == (None, 32, 32, 3)
    batch = np.random.default_rng(0).integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    out = np.asarray(model(batch, training=False))
    assert out.shape == (3, 1) and out.dtype == np.float32
    assert ((out >= 0) & (out <= 1)).all()


def test_augmentation_is_inactive_at_inference_but_active_in_training():
    from catdog.models import build_model

    model = build_model("compact", 32, compile=False)
    batch = np.random.default_rng(1).integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(model(batch, training=False)), np.asarray(model(batch, training=False)))
    aug = [layer for layer in model.layers if layer.name.startswith("aug_")]
    assert aug, "the preset should carry its augmentation layers"
    x = batch.astype("float32") / 255
    for layer in aug:
        x = layer(x, training=True)
    assert not np.allclose(np.asarray(x), batch.astype("float32") / 255)


def test_lite0_backbone_is_frozen_and_scales_input_as_lite0_was_trained():
    from catdog.models import build_model

    model = build_model("lite0", 32, compile=False)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 1280 + 1  # only the sigmoid head
    assert model.count_params() > 4_600_000
    scale = model.get_layer("lite0_scale")
    assert np.allclose(np.asarray(scale(np.array([0.0, 127.0, 255.0]))), [-127 / 128, 0.0, 1.0])


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
