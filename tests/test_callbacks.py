"""catdog.callbacks, tested as Keras tests its callbacks: set_model, then on_epoch_end with fake logs."""

from __future__ import annotations

import keras
import pytest

from catdog import runs
from catdog.callbacks import AtomicCheckpoint, RunRecorder, StopOnRequest


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("catdog.callbacks.time.time", clock)
    return clock


@pytest.fixture
def run(tmp_path) -> runs.Run:
    return runs.create_run(tmp_path, "r1", "seed")


@pytest.fixture
def tiny_model():
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


@pytest.fixture(autouse=True)
def _no_plots(monkeypatch):
    monkeypatch.setattr("catdog.plots.save_notebook_plots", lambda run: [])


def test_eta_is_extrapolated_from_batches_then_from_finished_epochs(run, tiny_model, clock):
    recorder = RunRecorder(run, epochs=3, steps=10)
    recorder.set_model(tiny_model)
    recorder.on_epoch_begin(0)
    clock.now += 5
    recorder.on_train_batch_end(4)  # 5 of 10 batches in 5 s: 5 s left here, 2 epochs of 10 s after
    assert run.progress()["eta_seconds"] == 25.0
    clock.now += 5
    recorder.on_epoch_end(0, logs={"loss": 0.7, "accuracy": 0.5, "val_loss": 0.69, "val_accuracy": 0.55})
    assert run.progress()["phase"] == "epoch_end" and run.progress()["eta_seconds"] == 20.0
    recorder.on_epoch_begin(1)
    clock.now += 2
    recorder.on_train_batch_end(1)  # finished epochs took 10 s each: 8 s left here, one epoch after
    assert run.progress()["eta_seconds"] == 18.0
    assert run.metrics() == [{"epoch": 1, "seconds": 10.0, "loss": 0.7, "accuracy": 0.5, "val_loss": 0.69, "val_accuracy": 0.55}]


def test_eta_leaves_out_the_first_batch_which_traces_the_graph(run, tiny_model, clock):
    recorder = RunRecorder(run, epochs=3, steps=10, min_interval=0)
    recorder.set_model(tiny_model)
    recorder.on_epoch_begin(0)
    clock.now += 30  # tracing and compiling: the first batch takes as long as 30 others
    recorder.on_train_batch_end(0)
    assert run.progress()["eta_seconds"] is None  # too early to say, rather than "37 min"
    for batch in range(1, 5):
        clock.now += 1
        recorder.on_train_batch_end(batch)
    assert run.progress()["eta_seconds"] == 25.0  # 1 s a batch: 5 s left here, 2 epochs of 10 s after
    for batch in range(5, 10):
        clock.now += 1
        recorder.on_train_batch_end(batch)
    recorder.on_epoch_end(0, logs={"loss": 0.7, "accuracy": 0.5})
    assert run.metrics()[0]["seconds"] == 39.0  # the record keeps the real time
    assert run.progress()["eta_seconds"] == 20.0  # two more epochs of 10 s, not of 39 s


def test_one_bar_for_the_whole_run_never_slides_back(run, tiny_model, clock):
    recorder = RunRecorder(run, epochs=2, steps=4, min_interval=0)
    recorder.set_model(tiny_model)
    seen = []
    for epoch in range(2):
        recorder.on_epoch_begin(epoch)
        seen.append(run.progress()["overall"])
        for batch in range(4):
            clock.now += 1
            recorder.on_train_batch_end(batch)
            seen.append(run.progress()["overall"])
        recorder.on_test_begin()
        seen.append(run.progress()["overall"])
        recorder.on_epoch_end(epoch, logs={"loss": 0.5})
        seen.append(run.progress()["overall"])
    assert seen == sorted(seen) and seen[0] == 0.0 and seen[-1] == 1.0
    assert run.progress()["eta_seconds"] == 0.0


def test_progress_writes_are_throttled_but_the_last_batch_always_lands(run, tiny_model, clock):
    recorder = RunRecorder(run, epochs=1, steps=3, min_interval=10)
    recorder.set_model(tiny_model)
    recorder.on_epoch_begin(0)
    clock.now += 1
    recorder.on_train_batch_end(0)
    assert run.progress()["batch"] == 0
    recorder.on_train_batch_end(2)
    assert run.progress()["batch"] == 3


def test_a_stopped_epoch_is_recorded_as_partial_and_replaced_on_resume(run, tiny_model, clock):
    recorder = RunRecorder(run, epochs=2, steps=4, initial_rows=[{"epoch": 1, "seconds": 3.0, "partial": True}])
    recorder.set_model(tiny_model)
    recorder.on_epoch_begin(0)
    clock.now += 4
    recorder.on_epoch_end(0, logs={"loss": 0.5})
    assert [r["epoch"] for r in run.metrics()] == [1] and "partial" not in run.metrics()[0]
    tiny_model.stop_training = True
    recorder.on_epoch_end(1, logs={"loss": 0.4})
    assert run.metrics()[1]["partial"] is True


def test_stop_on_request_stops_after_the_current_batch(tiny_model):
    class Request:
        value = False

        def is_set(self) -> bool:
            return self.value

    request = Request()
    stopper = StopOnRequest(request)
    stopper.set_model(tiny_model)
    stopper.on_train_batch_end(0)
    assert not stopper.stopped and not tiny_model.stop_training
    request.value = True
    stopper.on_train_batch_end(1)
    assert stopper.stopped and tiny_model.stop_training


def test_checkpoint_marks_a_cut_short_epoch_partial_and_keeps_only_the_one_state_names(run, tiny_model):
    checkpoint = AtomicCheckpoint(run)
    checkpoint.set_model(tiny_model)
    checkpoint.set_params({"epochs": 3, "steps": 10})
    checkpoint.on_epoch_begin(0)
    checkpoint.on_train_batch_end(9)
    checkpoint.on_epoch_end(0, logs={"val_accuracy": 0.6})
    state = run.checkpoint_state()
    assert state["epoch"] == 1 and state["partial"] is False and state["best"] == 0.6
    first = run.checkpoint_path
    assert first.name == state["checkpoint"] and first.exists() and (run.checkpoint_dir / "best.keras").exists()

    checkpoint.on_epoch_begin(1)
    checkpoint.on_train_batch_end(3)  # stopped after 4 of 10 batches
    checkpoint.on_epoch_end(1, logs={"val_accuracy": 0.5})
    state = run.checkpoint_state()
    assert state["epoch"] == 2 and state["partial"] is True and state["best"] == 0.6
    assert not first.exists() and sorted(p.name for p in run.checkpoint_dir.glob("last*.keras")) == [state["checkpoint"]]
    assert keras.saving.load_model(run.checkpoint_path).count_params() == tiny_model.count_params()


def test_old_runs_without_a_named_checkpoint_resume_from_last_keras(run):
    run.checkpoint_dir.mkdir()
    runs.atomic_write_json(run.checkpoint_dir / "state.json", {"epoch": 1, "partial": False})
    assert run.checkpoint_path == run.checkpoint_dir / "last.keras"


def test_eta_is_within_20_percent_from_the_second_epoch_on_with_slow_saves_and_a_finish(run, tiny_model, clock):
    """A warm start's shape: 7 batches of 1 s, 2 s of validation, 4 s of plots and checkpoint after each
    epoch, 20 s of tracing in the first batch and 12 s of calibration, saving and export at the end."""
    epochs, steps, batch_s, val_s, gap_s, trace_s, finish_s = 5, 7, 1.0, 2.0, 4.0, 20.0, 12.0
    total = trace_s + epochs * (steps * batch_s + val_s + gap_s) + finish_s
    start = clock.now
    recorder = RunRecorder(run, epochs=epochs, steps=steps, min_interval=0, finish_seconds=finish_s)
    recorder.set_model(tiny_model)
    checked = []

    def check(epoch: int) -> None:
        eta, truth = run.progress()["eta_seconds"], start + total - clock.now
        if epoch >= 1:  # from the second epoch on
            assert eta == pytest.approx(truth, rel=0.2), (epoch, run.progress())
            checked.append(eta)

    for epoch in range(epochs):
        recorder.on_epoch_begin(epoch)
        check(epoch)
        for batch in range(steps):
            clock.now += batch_s + (trace_s if epoch == 0 and batch == 0 else 0.0)
            recorder.on_train_batch_end(batch)
            check(epoch)
        recorder.on_test_begin()
        clock.now += val_s
        recorder.on_epoch_end(epoch, logs={"loss": 0.5})
        check(epoch)
        clock.now += gap_s  # plots and the checkpoint save, after the recorder's epoch end
    recorder.on_train_end()
    assert run.progress()["phase"] == "finishing" and run.progress()["eta_seconds"] == finish_s
    assert len(checked) == 4 * (steps + 2)
