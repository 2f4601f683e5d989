"""The `lite0` preset: EfficientNet-Lite0 with its ImageNet weights, a frozen backbone and a trainable head.

The network (as in the issue and the EfficientNet-PyTorch layout of the weights):
stem 3x3/2 conv to 32 filters, BatchNorm, ReLU6; 16 MBConv blocks with
EfficientNet-B0's arguments, no squeeze-excite, ReLU6, a residual connection where
the stride is 1 and the widths match; a 1x1 head conv to 1280, BatchNorm, ReLU6,
and a global average pool: the 1280 `features`. Padding is TensorFlow's "same",
BatchNorm's epsilon 1e-3, and the input RGB scaled as (x - 127) / 128, inside the
model (like every preset, it takes RGB pixel values 0..255).

Two things read the features: `p_dog`, the trainable head (P(class 1)), and
`imagenet`, the 1000 ImageNet logits, kept inside the model (the "not a cat or
dog" check reads them: `catdog.openset`). The features reach `p_dog` through
`keep_imagenet`, which adds 0 x (the logits), so the ImageNet branch stays in the
graph of the saved model, ONNX Runtime and every export, built of Keras' own layers.

Weights come from `catdog.pretrained` (no torch, no pickle code run), converted to
Keras' layout once and cached under `CATDOG_HOME/cache/lite0/<sha256 of the .pth>.npz`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from catdog import config

IMAGE_SIZE = 224
FEATURES = "features"
IMAGENET = "imagenet"
BN_EPSILON = 1e-3
# (repeats, kernel, stride, expansion, output filters): EfficientNet-B0's block arguments.
BLOCKS = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
STEM, HEAD = 32, 1280
# ImageNet-1k classes that are a cat or a dog: 151-268 are dog breeds, 281-285 domestic cats.
DOG_CLASSES = tuple(range(151, 269))
CAT_CLASSES = tuple(range(281, 286))
PET_CLASSES = DOG_CLASSES + CAT_CLASSES

log = logging.getLogger(__name__)


def block_specs() -> list[tuple[int, int, int, int, int]]:
    """Each of the 16 blocks as (kernel, stride, expansion, input filters, output filters)."""
    specs, filters_in = [], STEM
    for repeats, kernel, stride, expand, filters_out in BLOCKS:
        for r in range(repeats):
            specs.append((kernel, stride if r == 0 else 1, expand, filters_in, filters_out))
            filters_in = filters_out
    return specs


def build_backbone(inputs):
    """Lite0 from RGB 0..255 to the 1280 pooled features (Keras tensors); layer names follow the weights' blocks."""
    from keras import layers

    x = layers.Rescaling(1.0 / 128, offset=-127.0 / 128, name="lite0_scale")(inputs)
    x = _conv_bn(x, STEM, 3, 2, "stem")
    for i, (kernel, stride, expand, f_in, f_out) in enumerate(block_specs()):
        name = f"block{i}"
        y = x
        if expand != 1:
            y = _conv_bn(y, f_in * expand, 1, 1, f"{name}_expand")
        y = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_dwconv")(y)
        y = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_dwbn")(y)
        y = layers.ReLU(6.0, name=f"{name}_dwrelu")(y)
        y = layers.Conv2D(f_out, 1, padding="same", use_bias=False, name=f"{name}_project")(y)
        y = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_project_bn")(y)
        x = layers.Add(name=f"{name}_add")([y, x]) if stride == 1 and f_in == f_out else y
    x = _conv_bn(x, HEAD, 1, 1, "head")
    return layers.GlobalAveragePooling2D(name=FEATURES)(x)


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str):
    from keras import layers

    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x)


def build_lite0(image_size: int = IMAGE_SIZE, pretrained: bool | None = None):
    """EfficientNet-Lite0 (frozen, ImageNet weights) -> features -> `p_dog`, with the ImageNet logits kept inside.

    Args:
        image_size: input size in pixels (224, as Lite0 was trained; others work, less well).
        pretrained: load the ImageNet weights (default: unless `catdog.models.transfer.random_weights` is active).

    Raises:
        catdog.pretrained.WeightsError: the weights cannot be had (package missing, file damaged).
    """
    import keras
    from keras import layers

    from catdog.models.layers import sigmoid_output
    from catdog.models.transfer import pretrained_enabled

    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    features = build_backbone(inputs)
    imagenet = layers.Dense(1000, name=IMAGENET)(features)
    # features + 0 x (the logits): keeps the ImageNet branch in the graph with Keras' own layers only.
    tie = layers.Dense(1, use_bias=False, kernel_initializer="zeros", trainable=False, name="imagenet_tie")(imagenet)
    kept = layers.Add(name="keep_imagenet")([features, tie])
    model = keras.Model(inputs, sigmoid_output(kept), name="lite0")
    # Which weights the backbone holds: the features cache keys on it (random weights share nothing).
    model.catdog_weights_sha256 = None
    if pretrained_enabled() if pretrained is None else pretrained:
        model.catdog_weights_sha256 = set_imagenet_weights(model)
    freeze_backbone(model)
    return model


def freeze_backbone(model) -> None:
    """Everything but the head (`p_dog`) is frozen; BatchNorm stays in inference mode (its statistics are ImageNet's)."""
    from catdog.models.layers import OUTPUT_NAME

    for layer in model.layers:
        layer.trainable = layer.name == OUTPUT_NAME


# --- the weights: PyTorch layout -> Keras layout, cached --------------------------------


def keras_weights(state: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """The state dict as {Keras layer name: its weights in Keras' order and layout}.

    Raises:
        catdog.pretrained.WeightsError: a tensor is missing or has the wrong shape.
    """
    out: dict[str, list[np.ndarray]] = {}

    def conv(layer: str, key: str, depthwise: bool = False) -> None:
        w = _tensor(state, f"{key}.weight", 4)
        out[layer] = [w.transpose(2, 3, 0, 1) if depthwise else w.transpose(2, 3, 1, 0)]  # (kh, kw, C, 1) / (kh, kw, in, out)

    def bn(layer: str, key: str) -> None:
        out[layer] = [_tensor(state, f"{key}.{p}", 1) for p in ("weight", "bias", "running_mean", "running_var")]

    conv("stem_conv", "_conv_stem")
    bn("stem_bn", "_bn0")
    for i, (_, _, expand, _, _) in enumerate(block_specs()):
        key = f"_blocks.{i}"
        if expand != 1:
            conv(f"block{i}_expand_conv", f"{key}._expand_conv")
            bn(f"block{i}_expand_bn", f"{key}._bn0")
        conv(f"block{i}_dwconv", f"{key}._depthwise_conv", depthwise=True)
        bn(f"block{i}_dwbn", f"{key}._bn1")
        conv(f"block{i}_project", f"{key}._project_conv")
        bn(f"block{i}_project_bn", f"{key}._bn2")
    conv("head_conv", "_conv_head")
    bn("head_bn", "_bn1")
    out[IMAGENET] = [_tensor(state, "_fc.weight", 2).T, _tensor(state, "_fc.bias", 1)]
    return out


def _tensor(state: dict[str, np.ndarray], key: str, ndim: int) -> np.ndarray:
    from catdog.pretrained import WeightsError

    if key not in state:
        raise WeightsError(f"the weights file has no tensor {key!r}: it is not EfficientNet-Lite0")
    value = np.asarray(state[key], np.float32)
    if value.ndim != ndim or not np.all(np.isfinite(value)):
        raise WeightsError(f"tensor {key!r} has shape {value.shape} or non-finite values: it is not EfficientNet-Lite0's")
    return value


def cache_file(sha256: str) -> Path:
    return config.cache_dir() / "lite0" / f"{sha256}.npz"


def converted_weights() -> tuple[dict[str, list[np.ndarray]], str]:
    """The Keras-layout weights and the source file's sha256: from the cache, else read, converted and cached."""
    from catdog.pretrained import weights_path

    path, expected = weights_path()
    sha = expected or _sha256(path)
    cached = cache_file(sha)
    if cached.is_file():
        try:
            return _read_cache(cached), sha
        except (OSError, ValueError, KeyError) as exc:  # a damaged cache is rebuilt, never trusted
            log.warning("ignoring the damaged Lite0 weights cache %s: %s", cached, exc)
    from catdog.pretrained import read_state_dict

    state, sha = read_state_dict(path, expected)
    weights = keras_weights(state)
    try:
        _write_cache(cached, weights)
    except OSError as exc:
        log.warning("could not cache the converted Lite0 weights in %s: %s", cached, exc)
    return weights, sha


def _sha256(path: Path) -> str:
    from catdog.hashing import file_sha256

    return file_sha256(path)


def _write_cache(path: Path, weights: dict[str, list[np.ndarray]]) -> None:
    import io

    from catdog.atomic import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, **{f"{name}:{i}": w for name, ws in weights.items() for i, w in enumerate(ws)})
    atomic_write_bytes(path, buf.getvalue())


def _read_cache(path: Path) -> dict[str, list[np.ndarray]]:
    out: dict[str, list[np.ndarray]] = {}
    with np.load(path, allow_pickle=False) as z:
        for key in sorted(z.files, key=lambda k: (k.rsplit(":", 1)[0], int(k.rsplit(":", 1)[1]))):
            name = key.rsplit(":", 1)[0]
            out.setdefault(name, []).append(z[key])
    return out


def set_imagenet_weights(model) -> str:
    """Load Lite0's ImageNet weights into a `build_lite0` model; returns the weights file's sha256."""
    from catdog.pretrained import WeightsError

    weights, sha = converted_weights()
    for name, values in weights.items():
        layer = model.get_layer(name)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if expected != [tuple(v.shape) for v in values]:
            raise WeightsError(f"layer {name!r} wants weights of shapes {expected}, the file gives "
                               f"{[tuple(v.shape) for v in values]}: it is not EfficientNet-Lite0")
        layer.set_weights(values)
    return sha
