"""Keras dtype policies: build under one, read a model's, and switch a built model to another."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from catdog.models.layers import OUTPUT_NAME, iter_layers


@contextmanager
def dtype_policy(policy: str) -> Iterator[None]:
    """Build layers under a Keras dtype policy, then restore the old one."""
    import keras

    old = keras.mixed_precision.dtype_policy().name
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(old)


def model_policy(model) -> str:
    """The dtype policy a model computes in: that of its first layer with weights."""
    for layer in iter_layers(model):
        if layer.weights:
            return layer.dtype_policy.name
    return "float32"


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


def _set_policy(node, policy: str, keep: bool = False) -> None:
    """Point every layer config's dtype at `policy`, in place, nested models included."""
    if isinstance(node, list):
        for item in node:
            _set_policy(item, policy, keep)
        return
    if not isinstance(node, dict):
        return
    keep = keep or node.get("name") == OUTPUT_NAME
    dtype = node.get("dtype")
    if isinstance(dtype, dict) and dtype.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and not keep:
        dtype.setdefault("config", {})["name"] = policy
    for key, value in node.items():
        if key != "dtype":
            _set_policy(value, policy, keep)
