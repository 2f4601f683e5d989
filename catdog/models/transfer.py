"""Transfer-learning presets: a frozen ImageNet backbone, then fine-tuning.

Registered with its training defaults in `catdog.models`.
Weights: Keras' normal "imagenet" download when online, or a local file from
`CATDOG_MOBILENETV2_WEIGHTS`; `CATDOG_PRETRAINED=0` builds with random weights
(tests). With neither weights nor network, building raises a clear CatdogError.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from catdog.errors import CatdogError
from catdog.models.layers import augment, model_inputs, sigmoid_output

BACKBONE_NAME = "backbone"
MOBILENETV2_WEIGHTS_ENV = "CATDOG_MOBILENETV2_WEIGHTS"
PRETRAINED_ENV = "CATDOG_PRETRAINED"
PRETRAINED = True  # module-level switch: False builds with random weights (tests, parameter counts)


@contextmanager
def random_weights():
    """Build transfer-learning presets without loading ImageNet weights (e.g. to count parameters)."""
    global PRETRAINED
    old, PRETRAINED = PRETRAINED, False
    try:
        yield
    finally:
        PRETRAINED = old


def pretrained_weights(env_var: str) -> str | None:
    """Which ImageNet weights a transfer-learning preset loads.

    A file path from `env_var` wins; `CATDOG_PRETRAINED=0` (or `PRETRAINED =
    False`) means none (random weights, for tests); otherwise "imagenet" (Keras'
    normal download).
    """
    if not PRETRAINED:
        return None
    path = os.environ.get(env_var)
    if path:
        return path
    if os.environ.get(PRETRAINED_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    return "imagenet"


def _mobilenetv2_backbone(image_size: int):
    """MobileNetV2 without its top, with ImageNet weights when available."""
    import keras

    weights = pretrained_weights(MOBILENETV2_WEIGHTS_ENV)
    hint = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{image_size}_no_top.h5"
    if weights not in (None, "imagenet") and not os.path.isfile(weights):
        raise CatdogError(f"{MOBILENETV2_WEIGHTS_ENV}={weights!r} is not a file; point it at {hint}")
    try:
        return keras.applications.MobileNetV2(input_shape=(image_size, image_size, 3), include_top=False, weights=weights)
    except Exception as exc:  # noqa: BLE001 - get_file raises URL, HTTP, OS and value errors
        raise CatdogError(
            f"ImageNet weights for mobilenetv2 could not be downloaded: {exc}; "
            f"set {MOBILENETV2_WEIGHTS_ENV}=/path/to/{hint} or use the compact preset"
        ) from exc


def build_mobilenetv2(image_size: int):
    """A frozen MobileNetV2, global average pooling, dropout and a sigmoid head."""
    import keras
    from keras import layers

    inputs, x = model_inputs(image_size)
    x = augment(x)
    x = layers.Rescaling(2.0, offset=-1.0, name="to_minus1_1")(x)  # MobileNetV2 wants [-1, 1]
    backbone = _mobilenetv2_backbone(image_size)
    backbone.name = BACKBONE_NAME
    backbone.trainable = False
    # training=False keeps the backbone's BatchNorm in inference mode, also while fine-tuning.
    x = backbone(x, training=False)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    return keras.Model(inputs, sigmoid_output(x), name="mobilenetv2")


def unfreeze_top(model, n_layers: int) -> int:
    """Make the nested backbone's top `n_layers` trainable; BatchNorm layers stay frozen.

    Returns:
        How many layers became trainable (0 when the model has no backbone).
    """
    try:
        backbone = model.get_layer(BACKBONE_NAME)
    except ValueError:
        return 0
    backbone.trainable = True
    cut = max(0, len(backbone.layers) - n_layers)
    unfrozen = 0
    for i, layer in enumerate(backbone.layers):
        layer.trainable = i >= cut and type(layer).__name__ != "BatchNormalization"
        unfrozen += layer.trainable
    return unfrozen
