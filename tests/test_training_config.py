"""One resolved configuration: `TrainConfig(...)`, `catdog train` and the app's background training train the same thing."""

from __future__ import annotations

import dataclasses

import pytest

from catdog.cli import build_parser
from catdog.models import PRESETS
from catdog.training import BOUNDS, TrainConfig, config_flags, config_from_args, resolve, settings_from_record
from catdog.training.warm_start import WARM_START_LR_FACTOR


def cli_settings(argv: list[str]):
    """The Settings that `catdog train ARGV` trains with."""
    return resolve(config_from_args(build_parser().parse_args(["train", "--precision", "float32", *argv])))


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_train_config_and_the_cli_resolve_to_the_same_settings_for_every_preset(preset, tmp_path):
    in_code = resolve(TrainConfig(data=str(tmp_path), model=preset, precision="float32"))  # "auto" would ask TensorFlow
    assert in_code == cli_settings(["--data", str(tmp_path), "--model", preset])
    spec = PRESETS[preset]
    # The preset's own values, not a global default (TrainConfig(model="compact") once trained 10 epochs, the CLI 60).
    assert (in_code.epochs, in_code.batch_size, in_code.image_size) == (spec.epochs, spec.batch_size, spec.image_size)
    assert in_code.learning_rate == spec.learning_rate and in_code.lr_schedule == spec.lr_schedule


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_the_background_trainings_flags_resolve_to_the_same_settings(preset, tmp_path):
    cfg = TrainConfig(data=[str(tmp_path / "a"), str(tmp_path / "b")], model=preset, epochs=3, val_split=0.3, early_stopping=2,
                      precision="float32")
    assert cli_settings(config_flags(cfg)) == resolve(cfg)


def test_a_warm_start_defaults_to_a_tenth_of_the_presets_learning_rate(tmp_path, monkeypatch):
    import catdog.training.config as config_module

    monkeypatch.setattr(config_module, "resolve_init_from", lambda init_from: tmp_path / "model.keras")
    for preset, spec in PRESETS.items():
        warm = resolve(TrainConfig(data=str(tmp_path), model=preset, init_from="bundled", precision="float32"))
        assert warm.learning_rate == pytest.approx(spec.learning_rate * WARM_START_LR_FACTOR)
        assert warm.init_from == str(tmp_path / "model.keras")
        given = resolve(TrainConfig(data=str(tmp_path), model=preset, init_from="bundled", learning_rate=0.005, precision="float32"))
        assert given.learning_rate == 0.005


def test_a_warm_start_has_its_own_epochs_and_early_stopping_and_0_turns_it_off(tmp_path, monkeypatch):
    import catdog.training.config as config_module
    from catdog import config as defaults

    monkeypatch.setattr(config_module, "resolve_init_from", lambda init_from: tmp_path / "model.keras")
    warm = resolve(TrainConfig(data=str(tmp_path), model="compact", init_from="bundled"))
    assert (warm.epochs, warm.early_stopping) == (defaults.WARM_START_EPOCHS, defaults.WARM_START_PATIENCE)
    assert PRESETS["compact"].epochs != defaults.WARM_START_EPOCHS  # the preset's 60 is for training from scratch
    off = resolve(TrainConfig(data=str(tmp_path), model="compact", init_from="bundled", early_stopping=0, epochs=4))
    assert (off.epochs, off.early_stopping) == (4, 0)
    scratch = resolve(TrainConfig(data=str(tmp_path), model="compact"))
    assert (scratch.epochs, scratch.early_stopping) == (PRESETS["compact"].epochs, 0)
    # A warm start recorded with early stopping off resumes with it off.
    record = {**dataclasses.asdict(off), "data": off.data[0], "preset": "compact", "created": 0.0}
    assert settings_from_record(record).early_stopping == 0


def test_settings_are_frozen_and_come_back_from_config_json(tmp_path):
    settings = resolve(TrainConfig(data=str(tmp_path), model="seed", epochs=4, precision="float32"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.epochs = 5  # type: ignore[misc]
    record = {**dataclasses.asdict(settings), "data": settings.data[0], "preset": "seed", "created": 0.0}
    assert settings_from_record(record) == settings
    assert settings_from_record(record, epochs=9) == dataclasses.replace(settings, epochs=9)


def test_an_older_config_json_without_some_settings_gets_the_presets(tmp_path):
    settings = settings_from_record({"model": "compact", "data": str(tmp_path), "precision": "float32"})
    spec = PRESETS["compact"]
    assert (settings.epochs, settings.batch_size, settings.image_size) == (spec.epochs, spec.batch_size, spec.image_size)
    assert settings.precision == "float32"


@pytest.mark.parametrize(
    ("field", "value"),
    [("epochs", 0), ("epochs", BOUNDS["epochs"][1] + 1), ("batch_size", 0), ("image_size", 16), ("learning_rate", 0.0),
     ("label_smoothing", 0.5), ("calibration_split", 0.5), ("val_split", 1.0), ("early_stopping", -1), ("lr_schedule", "step"),
     ("cache", "cloud"), ("strategy", "tpu")],
)
def test_each_bad_setting_is_refused_naming_it_and_its_value(field, value, tmp_path):
    with pytest.raises(ValueError, match=rf"^{field}.*{value!r}"):
        resolve(TrainConfig(data=str(tmp_path), model="seed", precision="float32", **{field: value}))


def test_resolving_settings_never_imports_tensorflow_unless_it_must_pick_the_precision(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; from catdog.training import TrainConfig, resolve; "
        f"resolve(TrainConfig(data={str(tmp_path)!r}, precision='float32')); print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
