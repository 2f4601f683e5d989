"""fuse_batch_norm: TensorFlow's fused kernel, Keras' math, plain layers in the saved file."""

from __future__ import annotations

import numpy as np
import pytest

from catdog.models import build_model, count_params, fuse_batch_norm


def _pair(policy: str, **kwargs):
    import keras

    from catdog.models import dtype_policy

    with dtype_policy(policy):
        plain, fused = keras.layers.BatchNormalization(**kwargs), keras.layers.BatchNormalization(**kwargs)
    plain.build((None, 5, 4, 3))
    fused.build((None, 5, 4, 3))
    rng = np.random.default_rng(0)
    for layer in (plain, fused):
        layer.set_weights([rng.normal(1, 0.2, 3), rng.normal(0, 0.2, 3), np.zeros(3), np.ones(3)][: len(layer.weights)])
        rng = np.random.default_rng(0)
    wrapper = keras.Sequential([fused])
    assert fuse_batch_norm(wrapper) == 1
    return plain, fused


@pytest.mark.parametrize("policy,atol", [("float32", 1e-5), ("mixed_bfloat16", 2e-2)])
@pytest.mark.parametrize("kwargs", [{}, {"momentum": 0.9, "epsilon": 1e-5}, {"center": False, "scale": False}])
def test_fused_training_step_matches_keras_outputs_stats_and_gradients(policy, atol, kwargs):
    import tensorflow as tf

    plain, fused = _pair(policy, **kwargs)
    x = tf.constant(np.random.default_rng(1).normal(3, 2, (2, 5, 4, 3)), tf.float32)
    results = []
    for layer in (plain, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * tf.range(1.0, 4.0))
        grads = tape.gradient(loss, [x, *layer.trainable_weights])
        results.append((y, layer.moving_mean.numpy(), layer.moving_variance.numpy(), grads))
    (y0, m0, v0, g0), (y1, m1, v1, g1) = results
    assert y1.dtype == y0.dtype
    np.testing.assert_allclose(np.float32(y1), np.float32(y0), atol=atol)
    np.testing.assert_allclose(m1, m0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v1, v0, rtol=1e-5)  # biased variance, as Keras: 40 values per channel, so n/(n-1) would show
    for a, b in zip(g1, g0):
        np.testing.assert_allclose(np.float32(a), np.float32(b), atol=max(atol, 1e-4) * 10)


def test_inference_is_keras_own_path():
    import tensorflow as tf

    plain, fused = _pair("float32")
    x = tf.constant(np.random.default_rng(2).normal(0, 1, (2, 5, 4, 3)), tf.float32)
    np.testing.assert_array_equal(fused(x, training=False).numpy(), plain(x, training=False).numpy())


def test_fused_seed_network_trains_like_the_plain_one_and_saves_plain_layers(tmp_path):
    import keras

    keras.utils.set_random_seed(7)
    plain = build_model("seed", 40)
    keras.utils.set_random_seed(7)  # the same weights and the same dropout seeds
    fused = build_model("seed", 40)
    assert fuse_batch_norm(fused) == 3 and fuse_batch_norm(fused) == 0  # once per layer
    assert fused.count_params() == plain.count_params() == count_params("seed", 40)
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 256, (8, 40, 40, 3)).astype("float32"), rng.integers(0, 2, (8, 1)).astype("float32")
    for model in (plain, fused):  # SGD: Adam's first step is lr * sign(g), which flips on near-zero gradients
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="binary_crossentropy")
        model.train_on_batch(x, y)
    for a, b in zip(plain.get_weights(), fused.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-4)
    fused.save(tmp_path / "m.keras")
    assert '"class_name": "BatchNormalization"' in __import__("zipfile").ZipFile(tmp_path / "m.keras").read("config.json").decode()
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), plain.predict(x, verbose=0), atol=1e-4)


def test_installed_keras_is_one_the_fused_call_was_checked_against():
    """Fails loudly on a new Keras: check the patch, then raise KERAS_CHECKED and the pin in pyproject.toml."""
    import keras

    from catdog.models import fused_bn

    assert fused_bn.keras_is_checked(), (
        f"Keras {keras.__version__} is outside catdog.models.fused_bn.KERAS_CHECKED {fused_bn.KERAS_CHECKED}: "
        "fuse_batch_norm patches Keras internals; rerun these tests against it and update the bound"
    )
    layer = keras.layers.BatchNormalization()
    layer.build((None, 4, 4, 3))
    missing = [name for name in fused_bn.BATCH_NORM_ATTRIBUTES if not hasattr(layer, name)]
    assert not missing, f"Keras' BatchNormalization no longer has {missing}; fused_bn must be updated"
    assert list(__import__("inspect").signature(type(layer).call).parameters) == ["self", "inputs", "training", "mask"]


def test_unchecked_keras_leaves_the_layers_alone(monkeypatch):
    from catdog.models import fused_bn

    monkeypatch.setattr(fused_bn, "KERAS_CHECKED", ((2, 0), (3, 0)))
    with pytest.warns(RuntimeWarning, match="outside the versions"):
        assert fuse_batch_norm(build_model("seed", 40, compile=False)) == 0
