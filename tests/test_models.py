from __future__ import annotations

import pytest

from catdog import models
from catdog.models.layers import model_inputs, sigmoid_output


def test_seed_preset_is_the_notebook_network():
    model = models.build_model("seed")
    assert model.count_params() == 14_848_193
    assert model.input_shape == (None, 256, 256, 3)
    convs = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [32, 64, 128]
    assert all(c.kernel_size == (3, 3) and c.padding == "valid" and c.activation.__name__ == "relu" for c in convs)
    kinds = [layer.__class__.__name__ for layer in model.layers]
    assert kinds.count("BatchNormalization") == 3 and kinds.count("MaxPooling2D") == 3
    dense = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
    assert [d.units for d in dense] == [128, 64, 1]
    assert [layer.rate for layer in model.layers if layer.__class__.__name__ == "Dropout"] == [0.1, 0.1]
    assert dense[-1].activation.__name__ == "sigmoid"
    assert model.loss == "binary_crossentropy"
    assert model.optimizer.__class__.__name__ == "Adam"
    spec = models.get_preset("seed")
    assert (spec.image_size, spec.batch_size, spec.epochs) == (256, 32, 10)


def test_output_stays_float32_under_mixed_precision():
    model = models.build_model("seed", 32, precision="mixed_bfloat16", compile=False)
    assert model.layers[-1].dtype_policy.compute_dtype == "float32"
    assert model.layers[2].dtype_policy.name == "mixed_bfloat16"


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="unknown model preset 'nope'.*seed"):
        models.build_model("nope")


def test_adding_a_preset_is_one_function():
    import keras

    @models.preset("tmp_test_preset", image_size=40, description="test")
    def build(image_size):
        inputs, x = model_inputs(image_size)
        return keras.Model(inputs, sigmoid_output(keras.layers.GlobalAveragePooling2D()(x)))

    try:
        assert models.build_model("tmp_test_preset").input_shape == (None, 40, 40, 3)
    finally:
        models.PRESETS.pop("tmp_test_preset")
