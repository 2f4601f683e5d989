"""catdog.jobs: background trainings as detached child processes."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
import typing
from pathlib import Path

import pytest

from catdog import jobs, runs
from catdog.cli import build_parser
from catdog.errors import DatasetError, TrainingBusyError
from catdog.training import TrainConfig
from tests.fixtures import write_image


def wait_for(predicate, timeout: float = 90.0, interval: float = 0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")


def kill_active(root: Path) -> None:
    """Teardown: never leave a detached training behind."""
    holder = runs.read_lock(root)
    if holder:
        try:
            os.kill(holder["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_for(lambda: runs.read_lock(root) is None, timeout=20)


@pytest.fixture
def runs_root(tmp_path):
    root = tmp_path / "runs"
    yield root
    kill_active(root)


def slow_config(data: Path, **overrides) -> TrainConfig:
    settings = dict(
        data=str(data), model="seed", epochs=500, batch_size=2, image_size=32, val_split=0.25, precision="float32", checkpoint=False
    )
    settings.update(overrides)
    return TrainConfig(**settings)


def _non_default(f: dataclasses.Field, hint) -> object:
    """A value unlike the field's default, of the field's type (choices respected)."""
    from catdog.training.flags import _field_kind

    kind, element = _field_kind(hint)
    choices = f.metadata.get("choices")
    default = f.default if f.default is not dataclasses.MISSING else None
    if kind == "bool":
        return not default if default is not None else True
    if choices:
        return next(c for c in choices if c != default)
    if kind == "list":
        return [element("7") if element is not str else "/photos/a", element("8") if element is not str else "/photos/b"]
    return {int: 37, float: 0.125, str: f"/photos/{f.name}"}[element]


def test_train_command_round_trips_every_train_config_field_through_the_cli(tmp_path):
    from catdog.training import config_from_args

    hints = typing.get_type_hints(TrainConfig)
    fields = dataclasses.fields(TrainConfig)
    cfg = TrainConfig(**{f.name: _non_default(f, hints[f.name]) for f in fields})
    assert all(getattr(cfg, f.name) != (f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default) for f in fields)
    cmd = jobs.train_command(cfg, "r1", tmp_path)
    assert cmd[1:4] == ["-m", "catdog", "train"]
    args = build_parser().parse_args(cmd[3:])
    assert config_from_args(args) == cfg
    assert args.no_lock and args.run_id == "r1" and args.runs_dir == str(tmp_path)


def test_unset_optional_fields_stay_unset_through_the_cli(tmp_path):
    from catdog.training import config_from_args

    cfg = TrainConfig(data="/photos", checkpoint=False, jit_compile=None, image_size=None)
    args = build_parser().parse_args(jobs.train_command(cfg, "r1", tmp_path)[3:])
    assert config_from_args(args) == cfg and "--no-checkpoint" in jobs.train_command(cfg, "r1", tmp_path)


def test_bad_settings_and_missing_data_start_no_process(runs_root, tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match="epochs must be"):
        jobs.start_training(slow_config(tiny_dataset, epochs=0), runs_root)
    with pytest.raises(DatasetError, match="does not exist"):
        jobs.start_training(slow_config(tmp_path / "nowhere"), runs_root)
    assert runs.read_lock(runs_root) is None
    assert not runs_root.exists() or list(runs_root.iterdir()) == []


@pytest.mark.slow
def test_second_start_is_refused_while_the_first_one_runs(runs_root, tiny_dataset):
    run = jobs.start_training(slow_config(tiny_dataset), runs_root, run_id="first")
    # The lock is taken before the child has even imported TensorFlow.
    assert jobs.active_run(runs_root).path == run.path
    assert jobs.job_status(run).state in ("starting", "queued", "running")
    with pytest.raises(TrainingBusyError, match="first"):
        jobs.start_training(slow_config(tiny_dataset), runs_root, run_id="second")
    assert not (runs_root / "second").exists()
    wait_for(lambda: run.metrics())
    jobs.stop_training(run)
    status = wait_for(lambda: (s := jobs.job_status(run)) and not s.active and s)
    assert status.state == "stopped" and run.model_path.exists()
    wait_for(lambda: runs.read_lock(runs_root) is None, timeout=30)
    assert "Training seed" in (run.log_path.read_text())


def test_child_killed_before_it_started_is_reported_with_its_log(runs_root, tiny_dataset):
    run = jobs.start_training(slow_config(tiny_dataset), runs_root, run_id="killed")
    os.kill(runs.read_lock(runs_root)["pid"], signal.SIGKILL)
    wait_for(lambda: runs.read_lock(runs_root) is None, timeout=20)
    status = jobs.job_status(run)
    assert status.state == "failed" and not status.alive
    assert "ended before it started training" in status.error
    assert "catdog train" in status.log_tail  # the command line is the log's first line


@pytest.mark.slow
def test_child_that_fails_shows_the_runs_error_and_log_tail(runs_root, tmp_path):
    data = tmp_path / "broken"
    for name in ("cats", "dogs"):
        for i in range(3):
            (data / name).mkdir(parents=True, exist_ok=True)
            (data / name / f"{i}.jpg").write_bytes(b"not a jpeg at all")
    write_image(data / "cats" / "ok.jpg")  # one readable cat: still one class after skipping
    run = jobs.start_training(slow_config(data, val_split=0.5), runs_root, run_id="broken")
    status = wait_for(lambda: (s := jobs.job_status(run)) and not s.active and s)
    assert status.state == "failed" and not status.alive
    assert "one class" in status.error or "could be read" in status.error or "no images" in status.error.lower()
    assert "error:" in status.log_tail


def test_log_tail_drops_colour_codes_progress_redraws_and_tensorflow_chatter(tmp_path):
    run = runs.Run(tmp_path)
    run.log_path.write_text(
        "line 1\nI0000 00:00:1795531427.675184   10297 cudart_stub.cc:31] Could not find cuda drivers\n"
        "\x1b[1m1/3\x1b[0m old bar\b\b\b\r\x1b[1m3/3\x1b[0m final bar\nlast line\n"
    )
    assert jobs.log_tail(run) == "line 1\n3/3 final bar\nlast line"
    assert jobs.log_tail(run, lines=1) == "last line"


def test_prepared_run_folder_is_taken_over_by_the_training(tmp_path):
    (tmp_path / "prepared").mkdir()
    (tmp_path / "prepared" / "train.log").write_text("$ catdog train\n")
    assert runs.create_run(tmp_path, "prepared").path == tmp_path / "prepared"
    runs.Run(tmp_path / "prepared").write_config({"x": 1})
    with pytest.raises(runs.RunError, match="already exists"):
        runs.create_run(tmp_path, "prepared")


def test_two_starts_in_the_same_second_get_different_run_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "new_run_id", lambda preset: f"20260101-000000-{preset}")
    first = jobs._make_fresh_run_folder(tmp_path, "seed")
    second = jobs._make_fresh_run_folder(tmp_path, "seed")
    assert (first.id, second.id) == ("20260101-000000-seed", "20260101-000000-seed-2")
