"""Train BatchNormalization with TensorFlow's fused kernel, keeping Keras' math.

Keras 3's BatchNormalization computes the batch moments and the normalisation
as separate ops, in float32 even under a mixed policy; the fused kernel is
much faster on CPUs for most presets (measurements: docs/performance.md, Fused BatchNorm).

This patches layer *instances* (their `call`) and reads Keras' attributes
(`axis`, `gamma`, `beta`, `moving_mean`, `moving_variance`, `momentum`,
`epsilon`, `renorm`, `center`, `scale`). Those are Keras internals: the patch
is applied only on Keras versions it was checked against
(`KERAS_CHECKED`), and tests/test_fused_batch_norm.py fails when the installed
Keras is outside that range or the attributes change.
"""

from __future__ import annotations

import types
import warnings

from catdog.models.layers import iter_layers

# [first, last) Keras versions whose BatchNormalization this patch matches; raise the
# upper bound together with the keras pin in pyproject.toml after the tests pass.
KERAS_CHECKED = ((3, 3), (3, 16))

BATCH_NORM_ATTRIBUTES = ("axis", "momentum", "epsilon", "center", "scale", "renorm", "gamma", "beta", "moving_mean", "moving_variance")


def keras_version() -> tuple[int, int]:
    """The installed Keras' (major, minor)."""
    import keras

    major, minor = keras.__version__.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def keras_is_checked() -> bool:
    """Whether the installed Keras is one the fused call was checked against."""
    low, high = KERAS_CHECKED
    return low <= keras_version() < high


def fuse_batch_norm(model) -> int:
    """Train every BatchNormalization layer with TensorFlow's fused kernel; returns how many.

    The math is Keras' own: same variables, biased batch variance in the
    moving average, same momentum and epsilon, float32 inside, output in the
    layer's compute dtype; inference, masks, renorm and other backends use
    Keras' code unchanged. Only the layer instances are changed, never the
    class, so saved models hold plain `BatchNormalization` layers and load
    anywhere without catdog. On an unchecked Keras version nothing is changed
    (returns 0) and a warning says so.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return 0
    if not keras_is_checked():
        warnings.warn(
            f"Keras {keras.__version__} is outside the versions fused BatchNorm was checked against "
            f"{KERAS_CHECKED}; training uses Keras' own BatchNormalization",
            RuntimeWarning,
            stacklevel=2,
        )
        return 0
    n = 0
    for layer in iter_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization) and not getattr(layer, "_catdog_fused", False):
            object.__setattr__(layer, "call", types.MethodType(_fused_batch_norm_call, layer))
            object.__setattr__(layer, "_catdog_fused", True)
            n += 1
    return n


def _fused_batch_norm_call(self, inputs, training=None, mask=None):
    import tensorflow as tf

    rank = len(inputs.shape)
    axis = [a % rank for a in (self.axis if isinstance(self.axis, (list, tuple)) else [self.axis])] if rank else []
    if not (training and self.trainable) or mask is not None or self.renorm or rank != 4 or axis != [3]:
        return type(self).call(self, inputs, training=training, mask=mask)
    x = inputs if inputs.dtype in (tf.float16, tf.bfloat16, tf.float32) else tf.cast(inputs, tf.float32)
    channels = x.shape[-1]
    scale = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels], tf.float32)
    offset = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels], tf.float32)
    y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
        x, scale, offset, epsilon=self.epsilon, is_training=True, data_format="NHWC"
    )
    # The fused kernel returns the Bessel-corrected variance; Keras averages the biased one.
    count = tf.cast(tf.size(x, out_type=tf.int64) // channels, tf.float32)
    variance = variance * tf.maximum(count - 1.0, 1.0) / count
    self.moving_mean.assign(tf.cast(self.moving_mean, tf.float32) * self.momentum + mean * (1.0 - self.momentum))
    self.moving_variance.assign(tf.cast(self.moving_variance, tf.float32) * self.momentum + variance * (1.0 - self.momentum))
    return tf.cast(y, self.compute_dtype)
