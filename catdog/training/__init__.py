"""Training: `TrainConfig` (every setting, also the CLI flags), `train(config, ...)` and `resume(run)`.

Where things are (each module tells one part of the story):
    config.py     `TrainConfig` (what was asked), `resolve` -> frozen `Settings` (what is trained)
    flags.py      `TrainConfig` as `catdog train` flags and back
    data_prep.py  find, split and decode the photos (`prepare_data`)
    recipe.py     build and compile a preset, the learning-rate schedule, fine-tuning
    warm_start.py `--init-from`: copy a trained model's weights
    progressive.py progressive resizing's phases
    supervise.py  the lock, signals, stop requests, a failed run's status
    fit.py        `train`: prepare data -> build or warm-start -> fit -> finish (calibrate, save)
    resume.py     `resume`: from a checkpoint, or finish a run killed after its last epoch
"""

from catdog.atomic import save_model_atomic
from catdog.calibration import calibrate
from catdog.health import near_chance
from catdog.training.config import (
    BOUNDS,
    LR_SCHEDULES,
    Settings,
    TrainConfig,
    default_epochs,
    default_patience,
    resolve,
    settings_from_record,
    warm_start_learning_rate,
)
from catdog.training.data_prep import PreparedData, find_layouts, prepare_data, refuse_overlaps
from catdog.training.fit import finish, train
from catdog.training.flags import add_config_arguments, config_flags, config_from_args
from catdog.training.progressive import progressive_phases
from catdog.training.recipe import EMA_MOMENTUM, compile_for_training, cosine_learning_rate
from catdog.training.resume import resume
from catdog.training.supervise import StopRequested
from catdog.training.warm_start import WARM_START_LR_FACTOR, copy_weights, init_weights_from, resolve_init_from, warm_start_fits

__all__ = [
    "BOUNDS",
    "EMA_MOMENTUM",
    "LR_SCHEDULES",
    "WARM_START_LR_FACTOR",
    "PreparedData",
    "Settings",
    "StopRequested",
    "TrainConfig",
    "add_config_arguments",
    "calibrate",
    "compile_for_training",
    "config_flags",
    "config_from_args",
    "copy_weights",
    "cosine_learning_rate",
    "default_epochs",
    "default_patience",
    "find_layouts",
    "finish",
    "init_weights_from",
    "near_chance",
    "prepare_data",
    "progressive_phases",
    "refuse_overlaps",
    "resolve",
    "resolve_init_from",
    "resume",
    "save_model_atomic",
    "settings_from_record",
    "train",
    "warm_start_fits",
    "warm_start_learning_rate",
]
