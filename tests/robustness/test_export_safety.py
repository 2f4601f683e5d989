"""Export never destroys data, and every format works for every preset and the bundled model."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from catdog import cli, config
from catdog.export import FORMATS, export_model, sidecar_path
from tests.fixtures import REPO

SIZE = 48  # small enough to export every preset in seconds on a CPU
SUFFIX = {"keras": ".keras", "savedmodel": "", "tflite": ".tflite", "onnx": ".onnx"}


def _export(model, fmt: str, out: Path, *extra: str) -> tuple[int, str]:
    stdout, err = io.StringIO(), io.StringIO()
    code = cli.main(["export", str(model), "--format", fmt, "--out", str(out), *extra], out=stdout, err=err)
    return code, err.getvalue()


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _notes(folder: Path) -> dict[str, bytes]:
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("my notes\n")
    (folder / "sub" / "thesis.tex").write_text("\\section{cats}\n")
    return _snapshot(folder)


# --- never delete what export did not write -------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_over_an_existing_folder_is_refused_and_removes_nothing(tmp_path, tiny_run, fmt, stats):
    target = tmp_path / "notes"
    before = _notes(target)
    for extra in ((), ("--overwrite",)):
        code, err = _export(tiny_run.path, fmt, target, *extra)
        stats.fault()
        after = _snapshot(target)
        stats.lost(sum(1 for name, data in before.items() if after.get(name) != data))
        assert after == before
        assert code == 2 and "already exists" in err and "Traceback" not in err, err
    assert not sidecar_path(target).exists()
    assert [p.name for p in tmp_path.iterdir()] == ["notes"]  # no temp folder left beside it


def test_export_into_the_run_folder_itself_or_the_current_folder_is_refused(tmp_path, tiny_run, monkeypatch, stats):
    run_copy = tmp_path / "run"
    shutil.copytree(tiny_run.path, run_copy)
    before = _snapshot(run_copy)
    code, err = _export(run_copy, "savedmodel", run_copy)
    assert code == 2 and "already exists" in err
    code, err = _export(run_copy, "keras", run_copy / config.MODEL_FILENAME, "--overwrite")
    assert code == 2 and "already exists" in err
    monkeypatch.chdir(run_copy)
    code, err = _export(run_copy, "savedmodel", ".", "--overwrite")
    assert code == 2 and "already exists" in err
    stats.fault(3)
    after = _snapshot(run_copy)
    stats.lost(sum(1 for name, data in before.items() if after.get(name) != data))
    assert after == before


def test_overwrite_replaces_only_a_previous_export_of_the_same_format(tmp_path, tiny_run, stats):
    saved = tmp_path / "saved"
    assert _export(tiny_run.path, "savedmodel", saved) == (0, "")
    code, err = _export(tiny_run.path, "savedmodel", saved)
    assert code == 2 and "--overwrite" in err  # a previous export is not replaced silently
    assert _export(tiny_run.path, "savedmodel", saved, "--overwrite") == (0, "")
    assert (saved / "saved_model.pb").is_file()
    # Another format's export at the same path is not "ours" to replace.
    code, err = _export(tiny_run.path, "onnx", saved, "--overwrite")
    assert code == 2 and "not a previous onnx export" in err
    # A file the user put into the previous export folder keeps it from being removed.
    (saved / "README.txt").write_text("do not lose me")
    code, err = _export(tiny_run.path, "savedmodel", saved, "--overwrite")
    stats.fault(3)
    kept = (saved / "README.txt").is_file() and (saved / "README.txt").read_text() == "do not lose me"
    stats.lost(int(not kept))
    assert code == 2 and kept


def test_a_file_with_the_sidecars_name_is_not_overwritten(tmp_path, tiny_run, stats):
    out = tmp_path / "m.tflite"
    sidecar_path(out).write_text("my own json")
    code, err = _export(tiny_run.path, "tflite", out)
    stats.fault()
    assert code == 2 and "not a catdog export sidecar" in err
    assert sidecar_path(out).read_text() == "my own json" and not out.exists()


# --- every format, every preset, outputs match Keras ------------------------------


def _images(n: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, size, size, 3)).astype(np.float32)


def _run_export(path: Path, fmt: str, x: np.ndarray) -> np.ndarray:
    if fmt == "keras":
        import keras

        return np.asarray(keras.saving.load_model(path, compile=False)(x, training=False), np.float32)
    if fmt == "savedmodel":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))  # kept referenced: its variables die with it
        out = loaded.serve(x)
        return np.asarray(out["p_dog"] if isinstance(out, dict) else out, np.float32)  # a model with a check has two outputs
    if fmt == "tflite":
        import tensorflow as tf

        interp = tf.lite.Interpreter(model_path=str(path))
        if len(interp.get_output_details()) > 1:  # a model with a check: read P(dog) by its name
            return np.asarray(interp.get_signature_runner("serve")(image=x)["p_dog"], np.float32)
        index = interp.get_input_details()[0]["index"]
        interp.resize_tensor_input(index, x.shape)
        interp.allocate_tensors()
        interp.set_tensor(index, x)
        interp.invoke()
        return interp.get_tensor(interp.get_output_details()[0]["index"])
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _preset_model(tmp_path: Path, name: str) -> Path:
    from catdog.models import build_model
    from catdog.models.transfer import random_weights

    with random_weights():
        model = build_model(name, SIZE, compile=False)
    folder = tmp_path / name
    folder.mkdir()
    model.save(folder / config.MODEL_FILENAME)
    (folder / "config.json").write_text(json.dumps({"class_names": ["cats", "dogs"], "image_size": SIZE, "threshold": 0.5}))
    return folder


def _presets() -> list[str]:
    """The presets to export with random weights; lite0 is exported whole, in every format, as the bundled model (below)."""
    from catdog.models import PRESETS

    return [name for name in PRESETS if name != "lite0"]


@pytest.mark.slow
@pytest.mark.parametrize("preset", _presets())
def test_every_format_exports_every_preset_and_matches_keras(tmp_path, preset, monkeypatch, stats):
    import keras

    monkeypatch.setenv("CATDOG_PRETRAINED", "0")
    folder = _preset_model(tmp_path, preset)
    x = _images(3, SIZE)
    expected = np.asarray(keras.saving.load_model(folder / config.MODEL_FILENAME, compile=False)(x, training=False), np.float32)
    for fmt in FORMATS:
        out = export_model(folder, fmt, tmp_path / f"out-{fmt}{SUFFIX[fmt]}")
        got = _run_export(out, fmt, x)
        stats.input(True)
        assert got.shape == (3, 1), (fmt, got.shape)
        np.testing.assert_allclose(got, expected, atol=2e-4, err_msg=f"{preset} {fmt}")
        assert json.loads(sidecar_path(out).read_text())["format"] == fmt


@pytest.mark.slow
@pytest.mark.realdata
def test_the_bundled_model_exports_in_every_format_and_matches_keras_on_the_sample_photos(tmp_path, stats):
    from catdog.predict import Predictor

    bundled = REPO / "assets" / "model"
    photos = sorted((REPO / "assets" / "samples").glob("*.jpg"))
    if not (bundled / config.MODEL_FILENAME).exists() or not photos:
        pytest.skip("assets/model or assets/samples is missing")
    predictor = Predictor.load(bundled, precision="float32")
    from catdog.preprocess import load_array

    x = np.stack([load_array(p, predictor.image_size) for p in photos]).astype(np.float32)
    from catdog.calibration import apply_temperature

    raw = np.asarray(predictor.model(x, training=False), np.float32)
    for fmt in FORMATS:
        expected = raw if fmt == "keras" else apply_temperature(raw, predictor.temperature)  # the graph holds the calibration
        out = tmp_path / f"bundled-{fmt}{SUFFIX[fmt]}"
        code, err = _export(bundled, fmt, out)
        assert code == 0, f"{fmt}: {err}"
        got = _run_export(out, fmt, x)
        stats.input(True, n=len(photos))
        np.testing.assert_allclose(got, expected, atol=1e-3, err_msg=fmt)
        labels = (got[:, 0] >= predictor.threshold).astype(int)
        assert labels.tolist() == (expected[:, 0] >= predictor.threshold).astype(int).tolist()
