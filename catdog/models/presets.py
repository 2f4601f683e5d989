"""The from-scratch presets: `seed` (the notebook's CNN) and `compact` (the default).

Registered with their training defaults in `catdog.models`.
"""

from __future__ import annotations

from catdog.models.layers import BN_MOMENTUM, model_inputs, residual_block, sigmoid_output
from catdog.models.layers import augment as augment_layers

COMPACT_WIDTHS = (24, 32, 64, 128, 192)


def build_seed(image_size: int):
    """Exactly the notebook's network."""
    import keras
    from keras import layers

    inputs, x = model_inputs(image_size)
    for filters in (32, 64, 128):
        x = layers.Conv2D(filters, kernel_size=(3, 3), padding="valid", activation="relu")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(pool_size=(2, 2), strides=2, padding="valid")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Dense(64, activation="relu")(x)
    x = layers.Dropout(0.1)(x)
    return keras.Model(inputs, sigmoid_output(x), name="seed")


def build_compact(image_size: int, augment: str = "crop", widths: tuple[int, ...] | None = None):
    """A small residual CNN in the spirit of the Keras cats-vs-dogs example, sized for CPUs.

    Args:
        image_size: input size in pixels.
        augment: "crop" (the default), "standard" or "strong" (see `catdog.models.layers.augment`).
        widths: filters of the stem and each residual block (default 24; 32, 64, 128, 192).
    """
    import keras
    from keras import layers

    widths = tuple(widths or COMPACT_WIDTHS)
    inputs, x = model_inputs(image_size)
    x = augment_layers(x, augment)
    x = layers.Conv2D(widths[0], 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    for i, filters in enumerate(widths[1:]):
        x = residual_block(x, filters, f"block{i + 1}")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    return keras.Model(inputs, sigmoid_output(x), name="compact")
