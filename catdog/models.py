"""Model presets. Adding one is one decorated function.

Every preset takes uint8-valued RGB input of shape (size, size, 3) and starts
with `Rescaling(1/255)`, so the saved model carries the notebook's [0, 1]
scaling with it. The output is one float32 sigmoid unit: P(class 1 = dog).
"""

from __future__ import annotations

import types
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

from catdog import config


@dataclass(frozen=True)
class Preset:
    """A named architecture with its training defaults."""

    name: str
    build: Callable[[int], "object"]
    image_size: int
    description: str
    learning_rate: float = 1e-3
    epochs: int = config.EPOCHS
    batch_size: int = config.BATCH_SIZE
    lr_schedule: str = "constant"  # "constant" (the notebook's Adam) or "cosine"
    # Transfer learning: after the frozen epochs, unfreeze the backbone's top
    # `fine_tune_layers` layers and train `fine_tune_epochs` more at lr / 10.
    fine_tune_epochs: int = 0
    fine_tune_layers: int = 0
    # Precisions in which training uses `fuse_batch_norm` (measured per preset; see there).
    fuse_batch_norm_in: tuple[str, ...] = ("float32", "mixed_bfloat16", "mixed_float16")
    # Recipe: in-model augmentation strength (None: the preset has none), label smoothing, EMA weights.
    augment: str | None = None
    label_smoothing: float = 0.0
    ema: bool = False


PRESETS: dict[str, Preset] = {}


def preset(name: str, image_size: int, description: str, **defaults) -> Callable:
    """Register `fn(image_size) -> keras.Model` (uncompiled) as a preset."""

    def register(fn: Callable) -> Callable:
        PRESETS[name] = Preset(name, fn, image_size, description, **defaults)
        return fn

    return register


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]


@contextmanager
def dtype_policy(policy: str):
    """Build layers under a Keras dtype policy, then restore the old one."""
    import keras

    old = keras.mixed_precision.dtype_policy().name
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(old)


def build_model(name: str, image_size: int | None = None, precision: str = "float32", learning_rate: float | None = None, compile: bool = True, **options):
    """Build (and compile) a preset.

    Args:
        name: a key of `PRESETS`.
        image_size: input size in pixels; the preset's own when None.
        precision: a Keras dtype policy: float32, mixed_bfloat16 or mixed_float16.
        learning_rate: Adam's learning rate; the preset's own when None.
        compile: compile with adam, binary cross-entropy and accuracy.
        **options: architecture options the preset's builder accepts (compact: augment, widths).
    """
    import keras

    spec = get_preset(name)
    size = image_size or spec.image_size
    if not isinstance(size, int) or size < 32:
        raise ValueError(f"image_size must be an integer >= 32, got {size!r}")
    with dtype_policy(precision):
        model = spec.build(size, **options)
    if compile:
        lr = learning_rate if learning_rate is not None else spec.learning_rate
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=lr),
            loss="binary_crossentropy",
            metrics=["accuracy"],
        )
    return model


def model_policy(model) -> str:
    """The dtype policy a model computes in: that of its first layer with weights."""
    for layer in _layers(model):
        if layer.weights:
            return layer.dtype_policy.name
    return "float32"


def _layers(model):
    for layer in model.layers:
        yield from (_layers(layer) if hasattr(layer, "layers") else (layer,))


def with_policy(model, policy: str):
    """The same network and weights computing under another dtype policy.

    Every layer takes `policy` except the presets' sigmoid output (`p_dog`),
    which stays float32. Variables stay float32 in every mixed policy, so the
    weights carry over unchanged. Returns `model` itself when it already
    computes in `policy`.
    """
    if model_policy(model) == policy:
        return model
    config = model.get_config()
    _set_policy(config, policy)
    clone = model.__class__.from_config(config)
    clone.set_weights(model.get_weights())
    return clone


_OUTPUT_LAYERS = ("p_dog",)  # the presets' float32 output unit


def _set_policy(node, policy: str, keep: bool = False) -> None:
    """Point every layer config's dtype at `policy`, in place, nested models included."""
    if isinstance(node, list):
        for item in node:
            _set_policy(item, policy, keep)
        return
    if not isinstance(node, dict):
        return
    keep = keep or node.get("name") in _OUTPUT_LAYERS
    dtype = node.get("dtype")
    if isinstance(dtype, dict) and dtype.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and not keep:
        dtype.setdefault("config", {})["name"] = policy
    for key, value in node.items():
        if key != "dtype":
            _set_policy(value, policy, keep)


def fuse_batch_norm(model) -> int:
    """Train every BatchNormalization layer with TensorFlow's fused kernel; returns how many.

    Keras 3's BatchNormalization computes the batch moments and the
    normalisation as separate ops, in float32 even under a mixed policy. On
    the seed network (256 px, batch 32, 2 CPU cores) that was 75% of a
    bfloat16 training step: 1,113 ms per step against 395 ms with
    `tf.nn.fused_batch_norm` (float32: 1,389 against 776 ms). It is not
    always faster: the fused bfloat16 kernel made `compact` slower (183 ->
    239 ms), so each preset says where training uses it (`fuse_batch_norm_in`).

    The math is Keras' own: same variables, biased batch variance in the
    moving average, same momentum and epsilon, float32 inside, output in the
    layer's compute dtype; inference, masks, renorm and other backends use
    Keras' code unchanged. Only the layer instances are changed (their `call`),
    never the class, so saved models hold plain `BatchNormalization` layers
    and load anywhere without catdog.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return 0
    n = 0
    for layer in _layers(model):
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


def count_params(name: str, image_size: int | None = None) -> int:
    from catdog.transfer import random_weights

    with random_weights():  # counting needs no ImageNet download
        return int(build_model(name, image_size, compile=False).count_params())


def _inputs(image_size: int):
    import keras

    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    return inputs, keras.layers.Rescaling(1.0 / 255, name="rescale")(inputs)


def _output(x):
    import keras

    return keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="p_dog")(x)


@preset("seed", image_size=256, description="The original notebook's CNN, unchanged (3 conv blocks, 14.8M params)")
def build_seed(image_size: int):
    """Exactly the notebook's network."""
    import keras
    from keras import layers

    inputs, x = _inputs(image_size)
    for filters in (32, 64, 128):
        x = layers.Conv2D(filters, kernel_size=(3, 3), padding="valid", activation="relu")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(pool_size=(2, 2), strides=2, padding="valid")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Dense(64, activation="relu")(x)
    x = layers.Dropout(0.1)(x)
    return keras.Model(inputs, _output(x), name="seed")


AUGMENTATIONS = ("standard", "strong")


def _augment(x, strength: str = "standard"):
    """In-model augmentation, active only while training.

    standard: flip, small rotation, zoom and contrast.
    strong: adds random-resized crops (independent zoom in height and width, up
    to 35% in), translation, and colour and grayscale jitter.
    """
    from keras import layers

    if strength not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {strength!r}")
    x = layers.RandomFlip("horizontal", name="aug_flip")(x)
    x = layers.RandomRotation(0.08, fill_mode="reflect", name="aug_rotate")(x)
    if strength == "standard":
        x = layers.RandomZoom((-0.15, 0.1), fill_mode="reflect", name="aug_zoom")(x)
        return layers.RandomContrast(0.15, name="aug_contrast")(x)
    x = layers.RandomZoom((-0.35, 0.1), (-0.35, 0.1), fill_mode="reflect", name="aug_zoom")(x)
    x = layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", name="aug_translate")(x)
    x = layers.RandomContrast(0.25, name="aug_contrast")(x)
    x = layers.RandomBrightness(0.15, value_range=(0.0, 1.0), name="aug_brightness")(x)
    return layers.RandomGrayscale(0.1, name="aug_gray")(x)


def _residual_block(x, filters: int, name: str):
    """Strided 3x3 conv, 3x3 conv, and a strided 1x1 shortcut.

    Plain convolutions, not separable ones: on a 2-core AVX2 CPU a
    SeparableConv2D network trained about 3.5x slower per image than a plain
    Conv2D network of similar accuracy (19 vs 67 img/s at 128 px, batch 32).
    """
    from keras import layers

    shortcut = layers.Conv2D(filters, 1, strides=2, use_bias=False, name=f"{name}_skip")(x)
    shortcut = layers.BatchNormalization(momentum=_BN_MOMENTUM, name=f"{name}_skip_bn")(shortcut)
    x = layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    x = layers.BatchNormalization(momentum=_BN_MOMENTUM, name=f"{name}_bn1")(x)
    x = layers.Activation("relu")(x)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(x)
    x = layers.BatchNormalization(momentum=_BN_MOMENTUM, name=f"{name}_bn2")(x)
    x = layers.add([x, shortcut], name=f"{name}_add")
    return layers.Activation("relu", name=f"{name}_relu")(x)


COMPACT_WIDTHS = (24, 32, 64, 128, 192)

# Keras' default 0.99 lets the running statistics lag far behind the weights in
# short CPU trainings (validation accuracy stuck near 0.5); 0.9 tracks them.
_BN_MOMENTUM = 0.9


# Input size and epochs by measurement on catdog-small (5,700 training photos, 2 AMX cores,
# bfloat16): 128 px x 50 epochs gave 0.890 validation accuracy (18 min), 160 px x 60 epochs
# 0.916 (35 min); 128 px x 20 epochs 0.862. The bundled model is the 160 px one.
@preset(
    "compact",
    image_size=160,
    description="Small residual CNN with in-model augmentation, fast on CPUs (the default)",
    learning_rate=2e-3,
    epochs=60,
    # Step at 160 px, batch 32, 2 AMX cores: float32 183 ms, fused 155; bfloat16 183 ms, fused 239.
    fuse_batch_norm_in=("float32", "mixed_float16"),
    batch_size=32,
    lr_schedule="cosine",
    augment="standard",
)
def build_compact(image_size: int, augment: str = "standard", widths: tuple[int, ...] | None = None):
    """A small residual CNN in the spirit of the Keras cats-vs-dogs example, sized for CPUs.

    Args:
        image_size: input size in pixels.
        augment: "standard" or "strong" (see `_augment`).
        widths: filters of the stem and each residual block (default 24; 32, 64, 128, 192).
    """
    import keras
    from keras import layers

    widths = tuple(widths or COMPACT_WIDTHS)
    inputs, x = _inputs(image_size)
    x = _augment(x, augment)
    x = layers.Conv2D(widths[0], 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(momentum=_BN_MOMENTUM, name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    for i, filters in enumerate(widths[1:]):
        x = _residual_block(x, filters, f"block{i + 1}")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    return keras.Model(inputs, _output(x), name="compact")


# Registers the transfer-learning presets (mobilenetv2); it imports this module's helpers.
from catdog import transfer as _transfer  # noqa: E402,F401
