"""`RandomCropAugment`: random-resized crop, flip and rotation in one resampling, plus colour jitter.

Keras' RandomFlip, RandomRotation and RandomZoom each resample the whole
batch (about 27 ms of a 105 ms compact step at 160 px, issue 21). This layer
composes the crop, the flip and the rotation into one affine matrix per image
and resamples once (`keras.ops.image.affine_transform`); the colour jitter is
a few element-wise operations. Without rotation it uses the cheaper
`tf.image.crop_and_resize` (boxes with x1 > x2 are mirrored). It is a registered Keras layer, so saved
`.keras` files load wherever catdog is imported.
"""

from __future__ import annotations

import math

import keras
from keras import ops

# The gray mix of the colour jitter (ITU-R BT.601 luma, as tf.image.rgb_to_grayscale).
_LUMA = (0.299, 0.587, 0.114)
_DRAWS = 10  # uniform numbers per image: area, aspect, x, y, flip, angle, contrast, brightness, gray, spare


@keras.saving.register_keras_serializable(package="catdog")
class RandomCropAugment(keras.layers.Layer):
    """Random-resized crop with aspect jitter, horizontal flip, small rotation and colour jitter.

    Active only when called with `training=True`; otherwise it returns its
    input unchanged (exports and prediction call the model with training=False).
    Input: images in [0, 1], shape (batch, height, width, channels).

    Args:
        scale: range of the crop's area as a share of the image's.
        ratio: range of the crop's aspect ratio (width / height), sampled log-uniformly.
        rotation: largest rotation, in degrees, either way.
        flip: mirror half the images left to right.
        contrast: contrast factor drawn from [1 - contrast, 1 + contrast].
        brightness: offset drawn from [-brightness, brightness].
        grayscale: share of the images turned gray.
        seed: seed of the layer's `SeedGenerator` (None: from Keras' global seed).
    """

    def __init__(
        self,
        scale: tuple[float, float] = (0.35, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        rotation: float = 10.0,
        flip: bool = True,
        contrast: float = 0.2,
        brightness: float = 0.1,
        grayscale: float = 0.1,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_range("scale", scale, 0.0, 1.0)
        _check_range("ratio", ratio, 0.0, math.inf)
        for name, value, top in (("contrast", contrast, 1.0), ("brightness", brightness, 1.0), ("grayscale", grayscale, 1.0)):
            if not 0.0 <= value <= top:
                raise ValueError(f"{name} must be from 0 to {top}, got {value!r}")
        if not 0.0 <= rotation <= 180.0:
            raise ValueError(f"rotation must be from 0 to 180 degrees, got {rotation!r}")
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        self.rotation, self.flip = float(rotation), bool(flip)
        self.contrast, self.brightness, self.grayscale = float(contrast), float(brightness), float(grayscale)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        x = ops.cast(inputs, "float32")  # the resampling and jitter in float32, also under mixed precision
        shape = ops.shape(x)
        draws = keras.random.uniform((shape[0], _DRAWS), seed=self.seed_generator)
        sx, sy, cx, cy, mirror = self._crops(draws)
        if self.rotation:
            transforms = self._transforms(draws, (sx, sy, cx, cy, mirror), shape[1], shape[2])
            x = ops.image.affine_transform(x, transforms, fill_mode="reflect")
        else:
            x = _crop_and_resize(x, sx, sy, cx, cy, mirror)
        return ops.cast(self._jitter(x, draws), inputs.dtype)

    def _crops(self, u):
        """Per image: crop width and height (shares of the image's), centre (shares) and mirror (+1 or -1)."""
        area = self.scale[0] + (self.scale[1] - self.scale[0]) * u[:, 0]
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = ops.exp(log_lo + (log_hi - log_lo) * u[:, 1])
        # Relative to the (square-resized) image; a side that would overflow is clipped, not redrawn.
        sx = ops.minimum(ops.sqrt(area * aspect), 1.0)
        sy = ops.minimum(ops.sqrt(area / aspect), 1.0)
        cx = sx / 2 + (1 - sx) * u[:, 2]
        cy = sy / 2 + (1 - sy) * u[:, 3]
        mirror = ops.where(u[:, 4] < 0.5, -1.0, 1.0) if self.flip else ops.ones_like(sx)
        return sx, sy, cx, cy, mirror

    def _transforms(self, u, crops, height, width):
        """One (batch, 8) projective transform per image, output pixel -> input pixel: crop, flip and rotation."""
        sx, sy, cx, cy, mirror = crops
        h, w = ops.cast(height, "float32"), ops.cast(width, "float32")
        angle = (2 * u[:, 5] - 1) * (self.rotation * math.pi / 180)
        cos, sin = ops.cos(angle), ops.sin(angle)
        a0, a1 = mirror * sx * cos, -sy * sin
        b0, b1 = mirror * sx * sin, sy * cos
        ox, oy = (w - 1) / 2, (h - 1) / 2  # the output's centre maps to the crop's centre (pixel-index coordinates)
        a2 = cx * w - 0.5 - a0 * ox - a1 * oy
        b2 = cy * h - 0.5 - b0 * ox - b1 * oy
        zeros = ops.zeros_like(sx)
        return ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)

    def _jitter(self, x, u):
        """Per-image contrast (about the image's mean), brightness and occasional grayscale, in few passes."""
        per_image = lambda v: ops.reshape(v, (-1, 1, 1, 1))  # noqa: E731
        mean = ops.mean(x[:, ::8, ::8, :], axis=(1, 2, 3))  # a sparse grid is plenty for a contrast centre
        factor = 1 + self.contrast * (2 * u[:, 6] - 1)
        offset = per_image(mean * (1 - factor) + self.brightness * (2 * u[:, 7] - 1))
        if not self.grayscale or x.shape[-1] != 3:
            return ops.clip(x * per_image(factor) + offset, 0.0, 1.0)
        gray = ops.cast(u[:, 8] < self.grayscale, "float32")
        luma = ops.matmul(x, ops.convert_to_tensor([[v] for v in _LUMA], "float32"))  # (batch, h, w, 1)
        y = x * per_image(factor * (1 - gray)) + (luma * per_image(factor * gray) + offset)
        return ops.clip(y, 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            scale=list(self.scale),
            ratio=list(self.ratio),
            rotation=self.rotation,
            flip=self.flip,
            contrast=self.contrast,
            brightness=self.brightness,
            grayscale=self.grayscale,
            seed=self.seed,
        )
        return config


def _check_range(name: str, value, low: float, high: float) -> None:
    """A (min, max) pair with low < min <= max <= high."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (min, max) pair, got {value!r}") from None
    if not low < lo <= hi <= high:
        raise ValueError(f"{name} must be a (min, max) pair with {low} < min <= max <= {high}, got {value!r}")


def _crop_and_resize(x, sx, sy, cx, cy, mirror):
    """Crop boxes (flipped where `mirror` is -1) resized back to the input's size: one bilinear resampling."""
    import tensorflow as tf

    half_w = mirror * sx / 2  # x1 > x2 mirrors the crop left to right
    boxes = tf.stack([cy - sy / 2, cx - half_w, cy + sy / 2, cx + half_w], axis=1)
    shape = tf.shape(x)
    out = tf.image.crop_and_resize(x, boxes, tf.range(shape[0]), shape[1:3])
    return tf.ensure_shape(out, x.shape)  # keep the static size the next layers were built for
