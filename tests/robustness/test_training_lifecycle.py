"""A training's whole life: refused before a run folder exists, killed at the end and finished, resumed with the same batches.

Issue 17 items 8, 9, 10, 18 and 20.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from catdog import cli, jobs, runs
from catdog.models import get_preset
from catdog.training import TrainConfig, resume, train
from tests.fixtures import REPO, epochs_of, make_class_folders, quiet, tiny_config

pytestmark = pytest.mark.slow  # trainings; `pytest -m "not slow"` leaves them out


class Killed(BaseException):
    """Stands in for SIGKILL at one exact point of a training."""


def as_killed(run: runs.Run) -> None:
    """What a kill -9 leaves in status.json: "running", with a process that no longer exists."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run.write_status("running", pid=dead.pid)


def run_files(run: runs.Run) -> set[str]:
    """The names a reader sees at the top of a run folder (train.log aside: in-process runs write none)."""
    return {p.name for p in run.path.iterdir()} - {"train.log"}


@pytest.fixture(scope="module")
def normal_run(tmp_path_factory, tiny_dataset) -> runs.Run:
    """An uninterrupted tiny training: what every finish must produce."""
    return train(tiny_config(tiny_dataset), runs_dir=tmp_path_factory.mktemp("normal"), run_id="normal", **quiet(lock=False))


def assert_finished_like(run: runs.Run, normal: runs.Run) -> None:
    """The same files, settings keys, calibration and a servable model.onnx as a normal finish."""
    assert run.status()["state"] == "finished" and not run.status().get("error")
    assert run_files(run) == run_files(normal)
    assert set(run.config()) == set(normal.config())
    calibration = run.config()["calibration"]
    assert calibration["temperature"] > 0 and calibration["fitted_on"] == normal.config()["calibration"]["fitted_on"]
    assert (run.path / "model.onnx").stat().st_size > 0
    assert not list(run.path.rglob(".tmp-*"))
    err = io.StringIO()
    code = cli.main(["predict", str(REPO / "assets" / "samples" / "cat-1.jpg"), "--model", str(run.path)], io.StringIO(), err)
    assert code == 0, err.getvalue()


# --- item 8: a kill while model.onnx is written ------------------------------------


def test_a_kill_while_model_onnx_is_written_is_finished_by_resume(tmp_path, tiny_dataset, normal_run, monkeypatch, stats):
    import catdog.onnx_runtime

    def killed_while_writing(run_dir, logger=None):
        (Path(run_dir) / ".tmp-model.onnx-3f9a").write_bytes(b"")  # what the atomic write had begun
        raise Killed()

    monkeypatch.setattr(catdog.onnx_runtime, "write_onnx", killed_while_writing)
    with pytest.raises(Killed):
        train(tiny_config(tiny_dataset), runs_dir=tmp_path, run_id="onnx", **quiet(lock=False))
    monkeypatch.undo()
    run = runs.Run(tmp_path / "onnx")
    as_killed(run)
    stats.fault()
    assert run.model_path.exists() and not (run.path / "model.onnx").exists()
    assert run.status()["state"] == "failed" and jobs.resumable(run)  # the Resume button is offered...
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["train", "--resume", str(run.path)], out, err) == 0, err.getvalue()  # ...and it finishes the run
    assert_finished_like(run, normal_run)
    assert epochs_of(run) == [1, 2, 3]
    assert cli.main(["train", "--resume", str(run.path)], out, err) == 2 and "already has all" in err.getvalue()


# --- item 9: a kill between the last epoch and the save ----------------------------


class KilledAfterTheLastEpoch(keras.callbacks.Callback):
    def on_train_end(self, logs=None):
        raise Killed()


def test_recovery_after_a_kill_before_the_save_finishes_as_a_normal_training(tmp_path, tiny_dataset, normal_run, stats):
    with pytest.raises(Killed):
        train(tiny_config(tiny_dataset), runs_dir=tmp_path, run_id="late", callbacks=[KilledAfterTheLastEpoch()], **quiet(lock=False))
    run = runs.Run(tmp_path / "late")
    as_killed(run)
    stats.fault()
    assert not run.model_path.exists() and "calibration" not in run.config()
    resume(run, **quiet(lock=False))
    assert_finished_like(run, normal_run)
    assert run.status()["recovered_from_checkpoint"] is True and epochs_of(run) == [1, 2, 3]
    # The calibration is the recovered model's own, fitted as a normal finish fits it.
    assert run.config()["calibration"]["method"] == normal_run.config()["calibration"]["method"]


# --- item 10: a resumed epoch sees the batches an uninterrupted one sees -----------


class Batches:
    """Wraps `catdog.data.make_tf_dataset`: the digest of every training batch, per pipeline, in order."""

    def __init__(self, real):
        self.real, self.pipelines = real, []

    def __call__(self, decoded, *args, **kwargs):
        import tensorflow as tf

        ds = self.real(decoded, *args, **kwargs)
        if not kwargs.get("shuffle"):
            return ds  # validation
        seen: list[str] = []
        self.pipelines.append(seen)

        def record(x, y):
            seen.append(hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()[:16])
            return x

        def tap(x, y):
            x2 = tf.numpy_function(record, [x, y], tf.uint8, stateful=True)
            x2.set_shape(x.shape)
            return x2, y

        return ds.map(tap)


class RandomState(keras.callbacks.Callback):
    """The model's random-layer (augmentation) generator states at each epoch's start."""

    def __init__(self):
        super().__init__()
        self.states: dict[int, list] = {}

    def on_epoch_begin(self, epoch, logs=None):
        self.states[epoch] = [np.asarray(v).tolist() for v in self.model.variables if v.path.endswith("seed_generator_state")]


class StopAfterEpoch2(keras.callbacks.Callback):
    def __init__(self, run_path: Path):
        super().__init__()
        self.run_path = run_path

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            runs.Run(self.run_path).request_stop()


def test_a_resumed_epoch_sees_the_same_batches_and_augmentation_as_an_uninterrupted_one(tmp_path, tiny_dataset, monkeypatch, stats):
    import catdog.data

    cfg = TrainConfig(data=str(tiny_dataset), model="compact", epochs=3, batch_size=4, image_size=32, val_split=0.25, precision="float32")
    assert get_preset("compact").augment  # the preset augments: its random layers count too
    batches, whole = Batches(catdog.data.make_tf_dataset), RandomState()
    monkeypatch.setattr(catdog.data, "make_tf_dataset", batches)
    train(cfg, runs_dir=tmp_path, run_id="whole", callbacks=[whole], **quiet(lock=False))
    (uninterrupted,) = batches.pipelines
    steps = -(-runs.Run(tmp_path / "whole").config()["n_train"] // 4)

    batches.pipelines.clear()
    run = train(cfg, runs_dir=tmp_path, run_id="cut", callbacks=[StopAfterEpoch2(tmp_path / "cut")], **quiet(lock=False))
    stats.fault()
    assert run.checkpoint_state()["epoch"] >= 2
    run.stop_file.unlink()
    resumed_state = RandomState()
    resume(run, callbacks=[resumed_state], **quiet(lock=False))
    resumed = batches.pipelines[-1]
    assert epochs_of(run) == [1, 2, 3]
    assert len(uninterrupted) >= 3 * steps and len(resumed) >= steps
    assert resumed[:steps] == uninterrupted[2 * steps: 3 * steps], "epoch 3 after a resume saw other batches"
    assert uninterrupted[:steps] != uninterrupted[steps: 2 * steps], "every epoch has its own order"
    assert resumed_state.states[2] == whole.states[2], "epoch 3 after a resume drew other augmentations"


# --- item 18: photos in two splits -------------------------------------------------


@pytest.mark.parametrize("case", ["val-data-same", "data-twice", "data-inside"])
def test_catdog_train_refuses_photos_in_two_splits_before_a_run_folder_exists(tmp_path, tiny_dataset, case, stats):
    split = tmp_path / "split"  # Kaggle-style train/ + test/: --data split --data split/train pools its photos twice
    shutil.copytree(tiny_dataset, split / "train")
    make_class_folders(split / "test", n=4)
    given = {
        "val-data-same": ["--data", str(tiny_dataset), "--val-data", str(tiny_dataset)],
        "data-twice": ["--data", str(tiny_dataset), "--data", str(tiny_dataset)],
        "data-inside": ["--data", str(split), "--data", str(split / "train")],
    }[case]
    out, err = io.StringIO(), io.StringIO()
    runs_dir = tmp_path / "runs"
    code = cli.main(["train", *given, "--runs-dir", str(runs_dir), "--image-size", "32", "--epochs", "1"], out, err)
    stats.input(code == 2)
    assert code == 2, out.getvalue()[-2000:]
    assert "trained on" in err.getvalue() and "Traceback" not in err.getvalue()
    assert not runs_dir.exists() or not list(runs_dir.iterdir())


def test_the_same_photo_under_another_name_in_validation_is_warned_before_training(tmp_path, tiny_dataset):
    from catdog.training import prepare_data, resolve

    val = make_class_folders(tmp_path / "val", n=4, size=(40, 36))  # other photos than the training ones
    shutil.copy(next((tiny_dataset / "cats").iterdir()), val / "cats" / "renamed-copy.jpg")
    log = io.StringIO()
    settings = resolve(TrainConfig(data=str(tiny_dataset), val_data=str(val), model="seed", image_size=32, precision="float32"))
    prepare_data(settings, lambda m: print(m, file=log))
    assert "1 photo(s) are in two splits" in log.getvalue() and "renamed-copy.jpg" in log.getvalue()


# --- item 20: a bad --init-from or extra --data leaves no run folder ---------------


def bad_init_from(tmp_path: Path, tiny_run: runs.Run, kind: str) -> str:
    if kind == "not-a-model":
        bad = tmp_path / "broken.keras"
        bad.write_bytes(b"not a zip")
        return str(bad)
    return str(tiny_run.path)  # a seed run, for a compact training: another network


@pytest.mark.parametrize("kind", ["extra-data", "not-a-model", "other-preset"])
def test_a_bad_init_from_or_extra_data_is_refused_before_a_run_folder_exists(tmp_path, tiny_dataset, tiny_run, kind, stats):
    runs_dir = tmp_path / "runs"
    argv = ["train", "--model", "compact", "--data", str(tiny_dataset), "--runs-dir", str(runs_dir), "--image-size", "32", "--epochs", "1"]
    if kind == "extra-data":
        argv += ["--data", str(tmp_path / "missing")]
    else:
        argv += ["--model", "compact", "--init-from", bad_init_from(tmp_path, tiny_run, kind)]
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, out, err)
    stats.input(code == 2)
    assert code == 2 and err.getvalue().startswith("error: ") and "Traceback" not in err.getvalue()
    assert not runs_dir.exists() or not list(runs_dir.iterdir()), [p.name for p in runs_dir.iterdir()]


def test_the_train_page_refuses_the_same_folder_twice_and_keeps_start_off(home, tiny_dataset, stats):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60).run()
    at = at.switch_page("pages/train.py").run()
    at.text_input(key="train_data").set_value(str(tiny_dataset)).run()
    assert at.button(key="train_start").disabled is False  # one folder: fine
    at.text_area(key="train_data_more").set_value(str(tiny_dataset)).run()
    stats.input(False)
    assert not at.exception, at.exception
    assert any("given twice" in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="train_start").disabled
