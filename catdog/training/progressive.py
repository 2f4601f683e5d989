"""Progressive resizing: the first three quarters of the epochs at a smaller size, the rest at full size."""

from __future__ import annotations

from catdog import data
from catdog.models import fuse_batch_norm
from catdog.training.recipe import build_for_recipe


def progressive_phases(epochs: int, image_size: int, small: int | None) -> list[tuple[int, int, int]]:
    """(size, first epoch, end epoch) per phase: the first three quarters at `small`, the rest at full size."""
    if not small or small >= image_size or epochs < 2:
        return [(image_size, 0, epochs)]
    switch = epochs - max(1, epochs // 4)
    return [(small, 0, switch), (image_size, switch, epochs)]


def resized(model, size: int, settings):
    """The same network and weights at another input size, compiled afresh (the phases share no optimizer state)."""
    model = build_for_recipe(settings, size, weights_from=model)
    if settings.fused_batch_norm:
        fuse_batch_norm(model)
    return model


def redecode(decoded: data.DecodedSet, size: int, cache: str) -> data.DecodedSet:
    """The same photos decoded at another size."""
    return data.decode_images(data.ImageSet(list(decoded.paths), decoded.labels.tolist()), size, cache=cache)
