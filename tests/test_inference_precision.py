"""The dtype a model predicts in: float32 on CPUs, whatever it was trained in."""

from __future__ import annotations

import numpy as np
import pytest

from catdog import hardware
from catdog.models import build_model, model_policy, with_policy
from catdog.predict import Predictor


@pytest.mark.parametrize("preset", ["seed", "compact", "lite0"])
def test_with_policy_keeps_weights_and_a_float32_output(preset):
    from catdog.models.transfer import random_weights

    with random_weights():
        model = build_model(preset, 48, compile=False)
    clone = with_policy(model, "mixed_bfloat16")
    assert model_policy(model) == "float32" and model_policy(clone) == "mixed_bfloat16"
    assert clone.get_layer("p_dog").dtype_policy.name == "float32"
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), clone.get_weights()))
    back = with_policy(clone, "float32")
    x = np.random.default_rng(0).integers(0, 256, (3, *model.input_shape[1:])).astype("float32")
    assert np.allclose(back(x, training=False).numpy(), model(x, training=False).numpy(), atol=1e-6)
    assert np.allclose(clone(x, training=False).numpy(), model(x, training=False).numpy(), atol=0.05)  # bfloat16 keeps about 3 digits
    assert with_policy(model, "float32") is model


def test_a_model_trained_in_bfloat16_predicts_in_float32_on_a_cpu(tmp_path, monkeypatch):
    monkeypatch.delenv("CATDOG_PREDICT_PRECISION", raising=False)
    model = build_model("seed", 40, precision="mixed_bfloat16", compile=False)
    path = tmp_path / "model.keras"
    model.save(path)
    assert model_policy(Predictor.load(path).model) == ("float32" if hardware.gpu_count() == 0 else "mixed_float16")
    assert model_policy(Predictor.load(path, precision="mixed_bfloat16").model) == "mixed_bfloat16"
    monkeypatch.setenv("CATDOG_PREDICT_PRECISION", "mixed_bfloat16")
    assert model_policy(Predictor.load(path).model) == "mixed_bfloat16"


def test_inference_precision_rules():
    assert hardware.resolve_inference_precision("auto", gpus=0) == "float32"
    assert hardware.resolve_inference_precision("auto", gpus=1) == "mixed_float16"
    assert hardware.resolve_inference_precision("mixed_bfloat16", gpus=0) == "mixed_bfloat16"
    with pytest.raises(ValueError, match="precision must be one of"):
        hardware.resolve_inference_precision("int8")
