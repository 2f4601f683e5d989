"""Exports give the same predictions as the original Keras model."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from catdog.cli import main


def _images(size: int, n: int = 4) -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def reference(tiny_run):
    from catdog.predict import Predictor

    predictor = Predictor.load(tiny_run.path)
    batch = _images(predictor.image_size)
    return batch, predictor.raw_probs(batch), predictor.predict_arrays(batch)


def _export(tiny_run, fmt, out):
    stdout, err = io.StringIO(), io.StringIO()
    code = main(["export", str(tiny_run.path), "--format", fmt, "--out", str(out)], out=stdout, err=err)
    assert code == 0, err.getvalue()
    assert str(out) in stdout.getvalue()
    info = json.loads((out.parent / (out.name + ".catdog.json")).read_text())
    assert info["format"] == fmt and info["class_names"] == ["cat", "dog"]
    assert info["image_size"] == 32 and info["threshold"] == 0.5
    assert info["calibration"]["temperature"] == json.loads((tiny_run.path / "config.json").read_text())["calibration"]["temperature"]
    return out


@pytest.mark.slow
def test_keras_export_is_a_loadable_copy(tmp_path, tiny_run, reference):
    from catdog.predict import Predictor

    out = _export(tiny_run, "keras", tmp_path / "m.keras")
    batch, expected, _ = reference  # the .keras copy is the raw network; its sidecar holds the temperature
    np.testing.assert_allclose(Predictor.load(out).predict_arrays(batch), expected, atol=1e-6)


@pytest.mark.slow
def test_savedmodel_export_predicts_like_the_original(tmp_path, tiny_run, reference):
    import tensorflow as tf

    out = _export(tiny_run, "savedmodel", tmp_path / "saved")
    batch, _, expected = reference  # calibrated inside the exported graph
    loaded = tf.saved_model.load(str(out))
    got = np.asarray(loaded.serve(tf.constant(batch, tf.float32))).reshape(-1)
    np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.slow
def test_tflite_export_predicts_like_the_original(tmp_path, tiny_run, reference):
    import tensorflow as tf

    out = _export(tiny_run, "tflite", tmp_path / "m.tflite")
    batch, _, expected = reference  # calibrated inside the exported graph
    interpreter = tf.lite.Interpreter(model_path=str(out))
    inp, outp = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    got = []
    for image in batch:
        interpreter.resize_tensor_input(inp["index"], [1, 32, 32, 3])
        interpreter.allocate_tensors()
        interpreter.set_tensor(inp["index"], image[None].astype(np.float32))
        interpreter.invoke()
        got.append(float(interpreter.get_tensor(outp["index"]).reshape(-1)[0]))
    np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.slow
def test_onnx_export_predicts_like_the_original(tmp_path, tiny_run, reference):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    out = _export(tiny_run, "onnx", tmp_path / "m.onnx")
    batch, _, expected = reference  # calibrated inside the exported graph
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: batch.astype(np.float32)})[0].reshape(-1)
    np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.slow
def test_unknown_format_is_rejected_by_the_cli(tmp_path, tiny_run):
    err = io.StringIO()
    with pytest.raises(SystemExit):
        main(["export", str(tiny_run.path), "--format", "pickle"], out=io.StringIO(), err=err)


def test_export_of_missing_run_is_a_clear_error(tmp_path):
    err = io.StringIO()
    code = main(["export", str(tmp_path / "nope"), "--format", "keras", "--out", str(tmp_path / "x.keras")], out=io.StringIO(), err=err)
    assert code == 2 and "not found" in err.getvalue()
