"""What a training is asked to do (`TrainConfig`) and what it will do (`Settings`, from `resolve`).

`TrainConfig` holds the user's choices: every field is a `catdog train` flag and
None means "the preset's". `resolve` turns it, once, into a frozen `Settings`
with every value filled in: the preset's defaults, the warm-start learning-rate
rule, the precision for this hardware, absolute folders. The fit loop, `resume`,
the CLI, the Train page and config.json all read that one object.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from catdog import config as defaults
from catdog.data import CACHE_MODES
from catdog.distribute import STRATEGIES
from catdog.hardware import PRECISIONS, resolve_precision
from catdog.models import AUGMENTATIONS, get_preset
from catdog.training.warm_start import WARM_START_LR_FACTOR, resolve_init_from

LR_SCHEDULES = ("constant", "cosine")

# The settings' bounds, inclusive; the Train page's inputs use the same ones.
BOUNDS: dict[str, tuple[float, float]] = {
    "epochs": (1, 1000),
    "batch_size": (1, 4096),
    "image_size": (32, 1024),
    "learning_rate": (1e-6, 1.0),
    "label_smoothing": (0.0, 0.5),
    "calibration_split": (0.0, 0.5),
}


def setting(
    default: Any = dataclasses.MISSING, *, help: str | None = None, choices: Sequence[str] | None = None, metavar: str | None = None
) -> Any:
    """A `TrainConfig` field that also describes its CLI flag.

    Args:
        default: the default value (lists are copied per instance).
        help: the flag's help text.
        choices: the allowed values (the lists in code, never literals beside them).
        metavar: the value's name in the help.
    """
    metadata = {"help": help, "choices": tuple(choices) if choices else None, "metavar": metavar}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    """The settings a user asked for. `resolve(cfg)` fills in the rest.

    Each field is also a flag of `catdog train` (`catdog.training.flags`), and
    the app's background training passes it back through `config_flags`: a new
    field needs no other code. Bool fields become --x/--no-x, list fields
    repeated flags. None means "the preset's value".
    """

    data: str | list[str] = setting(
        help="dataset folder (cats/ + dogs/, train/ + test/, or cat.N.jpg files); repeat it to pool several; required unless --resume",
        metavar="DIR",
    )
    val_data: str | None = setting(None, help="a separate labelled validation folder")
    val_split: float | None = setting(
        None, help="fraction of --data held out for validation (default 0.2 when no validation folder exists)"
    )
    model: str = setting(defaults.DEFAULT_PRESET, help="preset name (see `catdog models`)")
    epochs: int | None = setting(None, help=f"default: the preset's ({defaults.WARM_START_EPOCHS} with --init-from)")
    batch_size: int | None = setting(None, help="per replica; default: the preset's")
    image_size: int | None = setting(None, help="default: the preset's")
    learning_rate: float | None = setting(None, help="Adam's learning rate (default: the preset's)")
    lr_schedule: str | None = setting(None, choices=LR_SCHEDULES, help="default: the preset's")
    precision: str = setting("auto", choices=PRECISIONS, help="dtype policy (auto: by hardware and preset)")
    early_stopping: int | None = setting(
        None,
        metavar="PATIENCE",
        help="stop after PATIENCE epochs without val_loss improvement; restores the best weights "
        f"(0: off; default off, {defaults.WARM_START_PATIENCE} with --init-from)",
    )
    checkpoint: bool = setting(True, help="save a checkpoint after each epoch (for --resume)")
    seed: int = setting(defaults.SEED, help="random seed for the split, shuffling and weights")
    cache: str = setting("auto", choices=CACHE_MODES, help="where decoded images are kept")
    strategy: str = setting(
        "auto", choices=STRATEGIES, help="tf.distribute strategy: mirrored = all local GPUs, multiworker = the cluster in TF_CONFIG"
    )
    # None: Keras' choice (XLA on GPUs, off on CPUs, where it measured no faster).
    jit_compile: bool | None = setting(None, help="XLA-compile the training step (default: on with a GPU, off on a CPU)")
    augment: str | None = setting(None, choices=AUGMENTATIONS, help="in-model augmentation strength (default: the preset's)")
    label_smoothing: float | None = setting(None, help="label smoothing of the loss, 0 to 0.5 (default: the preset's)")
    ema: bool | None = setting(None, help="average the weights during training, Adam's EMA (default: the preset's)")
    init_from: str | None = setting(
        None,
        metavar="bundled|RUN",
        help="start from a trained model's weights: 'bundled', a run folder or id, or a .keras file "
        "(learning rate defaults to a tenth of the preset's)",
    )
    calibration_split: float = setting(0.1, help="share of the training photos held out to fit the confidence calibration (0 = none)")
    progressive_size: int | None = setting(
        None,
        metavar="PX",
        help="progressive resizing: the first three quarters of the epochs at this smaller size, the rest at --image-size",
    )
    negatives: list[str] | None = setting(
        None,
        metavar="DIR",
        help="a folder of photos with no cat or dog (e.g. ../shared/data/not-pets/clothing); repeat for several: "
        "the 'not a cat or dog' check learns from them (never from the validation photos)",
    )

    def __post_init__(self) -> None:
        if isinstance(self.data, (list, tuple)) and len(self.data) == 1:
            self.data = str(self.data[0])  # one folder reads the same however it was given

    def data_folders(self) -> list[str]:
        """The training folders, as a list (`data` may be one path or several)."""
        folders = [self.data] if isinstance(self.data, (str, os.PathLike)) else list(self.data or [])
        return [str(f) for f in folders]

    def validate(self) -> None:
        """Check every given value (no files are read).

        Raises:
            ValueError: naming the first bad setting and its value.
        """
        spec = get_preset(self.model)
        _check_data(self)
        _check_sizes(self, spec)
        _check_recipe(self, spec)
        _check_choices(self)


def _in_bounds(name: str, value: Any, integer: bool = False, high_open: bool = False) -> bool:
    low, high = BOUNDS[name]
    if integer and (not isinstance(value, int) or isinstance(value, bool)):
        return False
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return low <= value < high if high_open else low <= value <= high


def _check_data(cfg: TrainConfig) -> None:
    """The dataset folders and how validation is chosen."""
    folders = cfg.data_folders()
    if not folders or not all(f.strip() for f in folders):
        raise ValueError(f"data must name at least one dataset folder, got {cfg.data!r}")
    if cfg.val_split is not None and not 0.0 < cfg.val_split < 1.0:
        raise ValueError(f"val_split must be between 0 and 1 (exclusive), got {cfg.val_split!r}")
    if cfg.val_data and cfg.val_split:
        raise ValueError("give either val_data or val_split, not both")
    if not _in_bounds("calibration_split", cfg.calibration_split, high_open=True):
        raise ValueError(f"calibration_split must be from 0 up to 0.5, got {cfg.calibration_split!r}")


def _check_sizes(cfg: TrainConfig, spec) -> None:
    """Epochs, batch and image sizes (None: the preset's)."""
    for name in ("epochs", "batch_size", "image_size"):
        value = getattr(cfg, name)
        if value is not None and not _in_bounds(name, value, integer=True):
            low, high = BOUNDS[name]
            raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    size = cfg.image_size or spec.image_size
    small = cfg.progressive_size
    if small is not None and not (isinstance(small, int) and 32 <= small < size):
        raise ValueError(f"progressive_size must be an integer from 32 up to the image size {size}, got {small!r}")


def _check_recipe(cfg: TrainConfig, spec) -> None:
    """Learning rate, early stopping, augmentation and label smoothing."""
    if cfg.learning_rate is not None and not _in_bounds("learning_rate", cfg.learning_rate):
        low, high = BOUNDS["learning_rate"]
        raise ValueError(f"learning_rate must be from {low:g} to {high:g}, got {cfg.learning_rate!r}")
    if cfg.early_stopping is not None and (not isinstance(cfg.early_stopping, int) or cfg.early_stopping < 0):
        raise ValueError(f"early_stopping patience must be an integer >= 0 (0 = off), got {cfg.early_stopping!r}")
    if cfg.augment is not None and spec.augment is None:
        raise ValueError(f"preset {spec.name!r} has no augmentation to choose; leave augment unset")
    if cfg.label_smoothing is not None and not _in_bounds("label_smoothing", cfg.label_smoothing, high_open=True):
        raise ValueError(f"label_smoothing must be from 0 up to 0.5, got {cfg.label_smoothing!r}")


def _check_choices(cfg: TrainConfig) -> None:
    """Fields with a fixed list of values (the CLI checks them too; a TrainConfig built in code may not)."""
    for name, allowed in (("lr_schedule", LR_SCHEDULES), ("strategy", STRATEGIES), ("augment", AUGMENTATIONS), ("cache", CACHE_MODES)):
        value = getattr(cfg, name)
        if value is not None and value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


@dataclass(frozen=True)
class Settings:
    """Every setting of one training, resolved once: what is trained, exactly. Saved in config.json."""

    model: str
    data: tuple[str, ...]
    val_data: str | None
    val_split: float | None
    epochs: int
    batch_size: int
    image_size: int
    learning_rate: float
    lr_schedule: str
    precision: str
    early_stopping: int | None
    checkpoint: bool
    seed: int
    cache: str
    strategy: str
    jit_compile: bool | None
    augment: str | None
    label_smoothing: float
    ema: bool
    init_from: str | None
    calibration_split: float
    progressive_size: int | None
    fused_batch_norm: bool
    negatives: tuple[str, ...] = ()

    def data_folders(self) -> list[str]:
        """The training folders, as a list."""
        return list(self.data)

    @property
    def spec(self):
        """The preset (`catdog.models.Preset`)."""
        return get_preset(self.model)

    def record(self) -> dict:
        """config.json: these settings, how images are prepared, and the library versions."""
        import keras
        import tensorflow as tf

        record = dataclasses.asdict(self)
        record.update(
            data=self.data[0] if len(self.data) == 1 else list(self.data),
            preset=self.model,
            class_names=list(defaults.CLASS_NAMES),
            threshold=defaults.THRESHOLD,
            preprocessing={"resize": "PIL bilinear, squash to square", "scale": self.spec.input_scaling, "input": "uint8 RGB"},
            versions={"tensorflow": tf.__version__, "keras": keras.__version__, "python": sys.version.split()[0]},
            created=time.time(),
        )
        return record


def warm_start_learning_rate(preset: str, warm: bool) -> float:
    """The default learning rate: the preset's, a tenth of it for a warm start (which fine-tunes)."""
    return get_preset(preset).learning_rate * (WARM_START_LR_FACTOR if warm else 1.0)


def _absolute(folder: str) -> str:
    return str(Path(folder).expanduser().resolve())


def resolve(cfg: TrainConfig, find_init_from: bool = True) -> Settings:
    """The one resolved, frozen `Settings` of `cfg`: preset defaults, warm-start rule, precision, folders.

    Args:
        cfg: what was asked for; checked first.
        find_init_from: resolve `init_from` to its model file now (a wrong one is
            refused before a run folder exists). `resume` passes False: the
            recorded value is already a file.

    Raises:
        ValueError: a bad setting. RunError: `init_from` names no model.
    """
    cfg.validate()
    spec = get_preset(cfg.model)
    precision = resolve_precision(cfg.precision, cpu_bf16=spec.cpu_bf16)  # per preset, by measurement
    init_from = str(resolve_init_from(cfg.init_from)) if cfg.init_from and find_init_from else cfg.init_from
    return Settings(
        model=spec.name,
        data=tuple(_absolute(f) for f in cfg.data_folders()),
        val_data=_absolute(cfg.val_data) if cfg.val_data else None,
        val_split=cfg.val_split,
        # A frozen backbone's head trains in seconds: a warm start keeps the preset's epochs, with no early stopping,
        # so the validation photos choose nothing and "before -> after" is measured on photos that picked no epoch.
        epochs=cfg.epochs or default_epochs(spec.name, bool(cfg.init_from)),
        batch_size=cfg.batch_size or spec.batch_size,
        image_size=cfg.image_size or spec.image_size,
        learning_rate=cfg.learning_rate if cfg.learning_rate is not None else warm_start_learning_rate(spec.name, bool(cfg.init_from)),
        lr_schedule=cfg.lr_schedule or spec.lr_schedule,
        precision=precision,
        early_stopping=cfg.early_stopping if cfg.early_stopping is not None else default_patience(spec.name, bool(cfg.init_from)),
        checkpoint=bool(cfg.checkpoint),
        seed=cfg.seed,
        cache=cfg.cache,
        strategy=cfg.strategy,
        jit_compile=cfg.jit_compile,
        augment=cfg.augment or spec.augment,
        label_smoothing=spec.label_smoothing if cfg.label_smoothing is None else cfg.label_smoothing,
        ema=spec.ema if cfg.ema is None else bool(cfg.ema),
        init_from=init_from,
        calibration_split=cfg.calibration_split,
        progressive_size=cfg.progressive_size,
        fused_batch_norm=precision in spec.fuse_batch_norm_in,
        negatives=tuple(_negative_folder(f) for f in cfg.negatives or ()),
    )


def default_epochs(preset: str, warm: bool) -> int:
    """Epochs when none are asked for: the preset's, or for a warm start of a network that trains whole, `WARM_START_EPOCHS`."""
    spec = get_preset(preset)
    return defaults.WARM_START_EPOCHS if warm and not spec.frozen_features else spec.epochs


def default_patience(preset: str, warm: bool) -> int:
    """Early stopping when none is asked for: on for a warm start of a network that trains whole, else off (0)."""
    return defaults.WARM_START_PATIENCE if warm and not get_preset(preset).frozen_features else 0


def _negative_folder(folder: str) -> str:
    """An absolute `--negatives` folder, refused now (before a run folder exists) when it holds no images."""
    from catdog.data import image_files

    image_files(folder)  # raises DatasetError naming the folder
    return _absolute(folder)


def settings_from_record(record: dict, epochs: int | None = None) -> Settings:
    """The `Settings` a run was trained with, from its config.json (older runs: missing values are the preset's).

    Args:
        record: the run's config.json.
        epochs: a new total number of epochs (default: the recorded one).
    """
    given = {f.name: record[f.name] for f in dataclasses.fields(TrainConfig) if record.get(f.name) is not None}
    cfg = TrainConfig(**given)
    if "early_stopping" in record and not record["early_stopping"]:
        cfg.early_stopping = 0  # recorded as off: a resumed warm start does not turn it on
    if epochs is not None:
        cfg.epochs = epochs
    if cfg.precision not in PRECISIONS:  # resolved and recorded ("float32"); kept as it was
        cfg.precision = "auto"
    settings = resolve(cfg, find_init_from=False)
    kept = {"precision": record.get("precision"), "fused_batch_norm": record.get("fused_batch_norm")}
    return dataclasses.replace(settings, **{k: v for k, v in kept.items() if v is not None})
