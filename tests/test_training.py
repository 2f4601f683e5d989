from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time

import keras
import pytest

from catdog import runs
from catdog.training import TrainConfig, train
from tests.fixtures import REPO

EXPECTED_FILES = {"config.json", "status.json", "metrics.jsonl", "progress.json", "model.keras", "accuracy.png", "loss.png"}


@pytest.mark.slow
def test_finished_run_holds_every_file(tiny_run):
    names = {p.name for p in tiny_run.path.iterdir()}
    assert EXPECTED_FILES <= names
    assert not [n for n in names if n.startswith(".")]  # no temp files left
    cfg = tiny_run.config()
    assert cfg["class_names"] == ["cat", "dog"]
    assert cfg["versions"]["tensorflow"] and cfg["versions"]["keras"]
    assert cfg["image_size"] == 32 and cfg["batch_size"] == 8 and cfg["model"] == "seed"
    assert tiny_run.status()["state"] == "finished"
    rows = tiny_run.metrics()
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all({"loss", "accuracy", "val_loss", "val_accuracy", "seconds"} <= set(r) for r in rows)
    progress = tiny_run.progress()
    assert progress["epoch"] == 2 and progress["batch"] == progress["batches"]
    assert tiny_run.checkpoint_path.exists() and tiny_run.checkpoint_path.name.startswith("last-")


@pytest.mark.slow
def test_user_callbacks_receive_epoch_logs(tmp_path, tiny_dataset):
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(sorted(logs))

    cfg = TrainConfig(data=str(tiny_dataset), model="compact", epochs=1, batch_size=8, image_size=32, val_split=0.25, checkpoint=False)
    train(cfg, runs_dir=tmp_path, callbacks=[Spy()], verbose=0, stream=io.StringIO(), lock=False, handle_signals=False)
    assert seen and "val_accuracy" in seen[0]


@pytest.mark.slow
def test_stop_file_ends_training_cleanly_and_keeps_the_model(tmp_path, tiny_dataset):
    class RequestStopAfterFirstBatch(keras.callbacks.Callback):
        def __init__(self, run_dir):
            super().__init__()
            self.run_dir = run_dir

        def on_train_batch_end(self, batch, logs=None):
            runs.Run(self.run_dir).request_stop()

    cfg = TrainConfig(data=str(tiny_dataset), model="compact", epochs=50, batch_size=4, image_size=32, val_split=0.25, checkpoint=False)
    run = train(
        cfg, runs_dir=tmp_path, run_id="stopme", callbacks=[RequestStopAfterFirstBatch(tmp_path / "stopme")],
        verbose=0, stream=io.StringIO(), lock=False, handle_signals=False,
    )
    assert run.status()["state"] == "stopped"
    assert len(run.metrics()) == 1 and run.metrics()[0]["partial"] is True
    assert keras.saving.load_model(run.model_path).count_params() > 0


@pytest.mark.slow
def test_sigterm_stops_a_cli_training_cleanly(tmp_path, tiny_dataset):
    cmd = [sys.executable, "-m", "catdog", "train", "--model", "compact", "--data", str(tiny_dataset), "--epochs", "500",
           "--batch-size", "2",
           "--image-size", "32", "--val-split", "0.25", "--runs-dir", str(tmp_path), "--run-id", "sig", "--no-checkpoint"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run = runs.Run(tmp_path / "sig")
    deadline = time.time() + 120
    while time.time() < deadline and not run.metrics():
        time.sleep(0.3)
    assert run.metrics(), "training never finished an epoch"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert run.status()["state"] == "stopped"
    assert run.model_path.exists()
    assert out.strip().splitlines()[-1] == str(run.path)
    assert runs.read_lock(tmp_path) is None


def test_bad_settings_are_refused_before_a_run_is_made(tmp_path, tiny_dataset):
    with pytest.raises(ValueError, match="epochs must be"):
        train(TrainConfig(data=str(tiny_dataset), epochs=0), runs_dir=tmp_path, lock=False)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_data_folder_is_refused_before_a_run_folder_exists(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        train(
            TrainConfig(data=str(tmp_path / "nope"), epochs=1), runs_dir=tmp_path / "runs", run_id="bad", lock=False, stream=io.StringIO()
        )
    assert not (tmp_path / "runs" / "bad").exists()


@pytest.mark.slow
def test_unreadable_photos_mark_the_run_failed_with_the_reason(tmp_path):
    for name in ("cats", "dogs"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(4):
            (tmp_path / "data" / name / f"{i}.jpg").write_bytes(b"not a photo")
    with pytest.raises(ValueError, match="could be read"):
        train(TrainConfig(data=str(tmp_path / "data"), epochs=1, image_size=32), runs_dir=tmp_path / "runs", run_id="bad", lock=False,
              stream=io.StringIO())
    status = json.loads((tmp_path / "runs" / "bad" / "status.json").read_text())
    assert status["state"] == "failed" and "could be read" in status["error"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "preset,precision,fused", [("seed", "mixed_bfloat16", True), ("compact", "mixed_bfloat16", False), ("compact", "float32", True)]
)
def test_training_fuses_batch_norm_where_the_preset_measured_it_faster(tmp_path, tiny_dataset, preset, precision, fused):
    log = io.StringIO()
    cfg = TrainConfig(data=str(tiny_dataset), model=preset, epochs=1, batch_size=8, image_size=32, val_split=0.25,
                      checkpoint=False, precision=precision)
    run = train(cfg, runs_dir=tmp_path, verbose=0, stream=log, lock=False, handle_signals=False)
    assert run.config()["fused_batch_norm"] is fused
    assert ("fused BatchNorm" if fused else "Keras BatchNorm") in log.getvalue()
    assert run.status()["state"] == "finished"
