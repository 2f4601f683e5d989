"""The training recipe: how a preset is built and compiled, and the learning-rate schedule."""

from __future__ import annotations

import math

from catdog.models import build_model
from catdog.training.warm_start import copy_weights

EMA_MOMENTUM = 0.99


def cosine_learning_rate(epoch: int, epochs: int, base: float, floor: float = 0.02) -> float:
    """Per-epoch cosine decay from `base` to `floor * base` at the last epoch."""
    if epochs <= 1:
        return base
    progress = min(1.0, epoch / (epochs - 1))
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def compile_for_training(model, learning_rate: float, label_smoothing: float = 0.0, ema: bool = False) -> None:
    """Adam, binary cross-entropy (optionally label-smoothed) and accuracy, as the notebook compiles."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate, use_ema=ema, ema_momentum=EMA_MOMENTUM),
        loss=keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing),
        metrics=["accuracy"],
    )


def build_for_recipe(settings, size: int, weights_from=None):
    """The run's preset at `size`, with `weights_from`'s weights if given, compiled with the run's recipe.

    Args:
        settings: the run's `catdog.training.config.Settings`.
        size: the input size (progressive resizing trains at several).
        weights_from: a model whose weights are copied in, layer by layer.
    """
    options = {"augment": settings.augment} if settings.augment else {}
    model = build_model(settings.model, size, precision=settings.precision, compile=False, **options)
    if weights_from is not None:
        copy_weights(weights_from, model)
    compile_for_training(model, settings.learning_rate, settings.label_smoothing, settings.ema)
    return model
