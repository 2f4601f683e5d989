"""Building blocks shared by the presets: input, output, augmentation, residual block."""

from __future__ import annotations

from typing import Iterator

# "crop": one resampling per batch (catdog.models.augment); "standard" and "strong" stay for older models.
AUGMENTATIONS = ("standard", "strong", "crop")

# Keras' default 0.99 lets the running statistics lag far behind the weights in
# short CPU trainings (validation accuracy stuck near 0.5); 0.9 tracks them.
BN_MOMENTUM = 0.9

OUTPUT_NAME = "p_dog"


def model_inputs(image_size: int):
    """The uint8-valued RGB input and its `Rescaling(1/255)` to [0, 1].

    Returns:
        (inputs, rescaled) Keras tensors.
    """
    import keras

    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    return inputs, keras.layers.Rescaling(1.0 / 255, name="rescale")(inputs)


def sigmoid_output(x):
    """One float32 sigmoid unit, P(class 1 = dog), also under mixed precision."""
    import keras

    return keras.layers.Dense(1, activation="sigmoid", dtype="float32", name=OUTPUT_NAME)(x)


def augment(x, strength: str = "standard"):
    """In-model augmentation, active only while training.

    Args:
        x: the rescaled image tensor.
        strength: "crop" (random-resized crop with aspect jitter, flip and small
            rotation in one resampling, plus colour jitter: `RandomCropAugment`),
            "standard" (flip, rotation, zoom and contrast, each its own layer) or
            "strong" (adds random-resized crops, translation, and colour and grayscale jitter).
    """
    from keras import layers

    if strength not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {strength!r}")
    if strength == "crop":
        from catdog.models.augment import RandomCropAugment

        return RandomCropAugment(name="aug_crop")(x)
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


def residual_block(x, filters: int, name: str):
    """Strided 3x3 conv, 3x3 conv, and a strided 1x1 shortcut.

    Plain convolutions, not separable ones: on CPUs they train several times
    faster per image at similar accuracy (see README, Models).
    """
    from keras import layers

    shortcut = layers.Conv2D(filters, 1, strides=2, use_bias=False, name=f"{name}_skip")(x)
    shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_skip_bn")(shortcut)
    x = layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn1")(x)
    x = layers.Activation("relu")(x)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn2")(x)
    x = layers.add([x, shortcut], name=f"{name}_add")
    return layers.Activation("relu", name=f"{name}_relu")(x)


def iter_layers(model) -> Iterator:
    """Every leaf layer of `model`, nested models flattened."""
    for layer in model.layers:
        yield from (iter_layers(layer) if hasattr(layer, "layers") else (layer,))
