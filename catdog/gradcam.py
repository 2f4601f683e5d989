"""Grad-CAM: which parts of an image drove the model's cat-or-dog decision.

`gradcam(model, array)` returns a heatmap in [0, 1] at the array's own size;
`overlay(array, heatmap)` blends it over the image with a colour map. It works
for every preset: the target is the last layer with a 4D (feature-map) output,
and a nested backbone (a keras.applications model inside ours) counts as one
such layer, so its final feature map is used.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path

import numpy as np
from PIL import Image

from catdog import config
from catdog.errors import CatdogError

# Layers whose 4D output is not a learned feature map worth explaining.
_SKIPPED_PREFIXES = (
    "Random",
    "Rescaling",
    "Normalization",
    "InputLayer",
    "Dropout",
    "SpatialDropout",
    "MaxPooling",
    "AveragePooling",
    "ZeroPadding",
    "Cropping",
)

_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def find_target_layer(model, layer_name: str | None = None):
    """The layer whose output Grad-CAM weighs: `layer_name`, or the last 4D-output layer.

    Raises:
        CatdogError: the name is unknown or the model has no 4D-output layer.
    """
    if layer_name is not None:
        try:
            return model.get_layer(layer_name)
        except ValueError as exc:
            raise CatdogError(f"model {model.name!r} has no layer {layer_name!r}") from exc
    for layer in reversed(model.layers):
        if type(layer).__name__.startswith(_SKIPPED_PREFIXES):
            continue
        shape = getattr(layer, "output", None)
        shape = getattr(shape, "shape", None)
        if shape is not None and len(shape) == 4:
            return layer
    raise CatdogError(f"model {model.name!r} has no layer with a 4D output to explain")


def _outer_output(layer):
    """The layer's output tensor in the enclosing model's graph.

    A nested model's `.output` is the tensor of its own inner graph, which the
    outer model's inputs do not reach; its call node in the outer graph does.
    """
    import keras

    if isinstance(layer, keras.Model) and getattr(layer, "_inbound_nodes", None):
        return layer._inbound_nodes[-1].output_tensors[0]
    return layer.output


def _explainer(model, layer_name: str | None):
    """A compiled function image batch -> (feature maps, gradients of the predicted class' score)."""
    key = layer_name or ""
    with _CACHE_LOCK:
        per_model = _CACHE.setdefault(model, {})
        if key in per_model:
            return per_model[key]
    import keras
    import tensorflow as tf

    layer = find_target_layer(model, layer_name)
    head = _sigmoid_head(model)
    if head is None:  # not a catdog network: explain the probability itself
        grad_model = keras.Model(model.inputs, [_outer_output(layer), model.outputs[0]])
    else:  # explain the logit: a saturated P (1.0 in float32) has no gradient at all
        grad_model = keras.Model(model.inputs, [_outer_output(layer), head.input])
    size = int(model.input_shape[1])
    spec = tf.TensorSpec((1, size, size, 3), tf.uint8)

    @tf.function(input_signature=[spec, tf.TensorSpec((), tf.float32)])
    def explain(x, threshold):
        with tf.GradientTape() as tape:
            maps, out = grad_model(tf.cast(x, tf.float32), training=False)
            maps = tf.cast(maps, tf.float32)
            if head is None:
                p = tf.cast(tf.reshape(out, (-1,)), tf.float32)
                score = tf.where(p >= threshold, p, 1.0 - p)  # the predicted label's probability
            else:
                z = tf.matmul(tf.cast(out, tf.float32), tf.cast(head.kernel, tf.float32)) + tf.cast(head.bias, tf.float32)
                z = tf.reshape(z, (-1,))
                p = tf.sigmoid(z)
                score = tf.where(p >= threshold, z, -z)  # the predicted label's logit: dog's z, cat's -z
        grads = tape.gradient(score, maps)
        return maps[0], grads[0], p[0]

    with _CACHE_LOCK:
        per_model[key] = explain
    return explain


def _sigmoid_head(model):
    """The network's output layer when it is catdog's Dense(1, sigmoid) `p_dog` (its logit can be computed), else None."""
    import keras

    from catdog.models.layers import OUTPUT_NAME

    try:
        head = model.get_layer(OUTPUT_NAME)
    except ValueError:
        return None
    activation = getattr(getattr(head, "activation", None), "__name__", "")
    if isinstance(head, keras.layers.Dense) and activation == "sigmoid" and head.units == 1 and head.use_bias:
        return head
    return None


def gradcam(model, array_uint8: np.ndarray, layer_name: str | None = None, threshold: float = config.THRESHOLD) -> np.ndarray:
    """A Grad-CAM heatmap for one image.

    Args:
        model: a catdog Keras model (uint8 RGB input, one sigmoid output).
        array_uint8: the image, (H, W, 3) uint8, any size; it is resized to the model's input.
        layer_name: a top-level layer to explain (default: the last 4D-output layer).
        threshold: P(dog) at or above which the predicted label is dog.

    Returns:
        float32 (H, W) in [0, 1]; all zeros where no region raises the score.
    """
    array = np.asarray(array_uint8)
    if array.ndim != 3 or array.shape[2] != 3:
        raise CatdogError(f"gradcam needs an (H, W, 3) RGB array, got shape {array.shape}")
    array = array.astype(np.uint8, copy=False)
    size = int(model.input_shape[1])
    resized = np.asarray(Image.fromarray(array).resize((size, size), Image.BILINEAR), dtype=np.uint8)
    maps, grads, _ = _explainer(model, layer_name)(resized[None], np.float32(threshold))
    maps, grads = maps.numpy(), grads.numpy()
    weights = grads.mean(axis=(0, 1))  # one weight per channel: its average gradient
    cam = np.maximum((maps * weights).sum(axis=-1), 0.0)
    peak = float(cam.max()) if cam.size else 0.0
    if not np.isfinite(peak) or peak <= 0.0:
        return np.zeros(array.shape[:2], dtype=np.float32)
    cam = (cam / peak).astype(np.float32)
    big = Image.fromarray(cam, mode="F").resize((array.shape[1], array.shape[0]), Image.BILINEAR)
    return np.clip(np.asarray(big, dtype=np.float32), 0.0, 1.0)


def overlay(array_uint8: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4, colormap: str = "jet") -> Image.Image:
    """The image with the heatmap blended over it in a colour map (RGB, the image's size)."""
    from matplotlib import colormaps

    array = np.asarray(array_uint8, dtype=np.uint8)
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.shape != array.shape[:2]:
        heat = np.asarray(Image.fromarray(heat, mode="F").resize((array.shape[1], array.shape[0]), Image.BILINEAR))
    coloured = colormaps[colormap](np.clip(heat, 0.0, 1.0))[..., :3] * 255.0
    blended = (1.0 - alpha) * array[..., :3].astype(np.float32) + alpha * coloured
    return Image.fromarray(np.clip(blended, 0, 255).astype(np.uint8), mode="RGB")


def explain(predictor, source, max_side: int = 512) -> tuple[np.ndarray, Image.Image]:
    """The heatmap and overlay for one image with a loaded `Predictor`.

    The image is the display version (oriented RGB, longest side `max_side`), so
    the overlay looks like the photo; the heatmap comes from the model's own input size.
    """
    from catdog.preprocess import load_display_image

    array = np.asarray(load_display_image(source, max_side=max_side).convert("RGB"), dtype=np.uint8)
    heat = gradcam(predictor.model, array, threshold=predictor.threshold)
    return heat, overlay(array, heat)


def save_explanation(predictor, source, out_dir, stem: str) -> Path:
    """Write `<out_dir>/<stem>.gradcam.png` and return its path."""

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{stem}.gradcam.png"
    explain(predictor, source)[1].save(path)
    return path
