"""The ONNX Runtime backend: conversion cached by hash, fallback, parity with Keras, no TensorFlow import."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from catdog import config, hashing, onnx_runtime
from catdog.errors import CatdogError, RunError
from catdog.predict import Predictor
from tests.fixtures import REPO, SHARED_DATA, image_bytes, make_class_folders

pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

BUNDLED = REPO / "assets" / "model"
SAMPLES = sorted((REPO / "assets" / "samples").glob("*.jpg"))
PARITY = 1e-5


def _copy_model(run_dir: Path, dest: Path, calibration: dict | None = None) -> Path:
    """model.keras and config.json of a run (no ONNX file) in a new folder, optionally with a calibration."""
    dest.mkdir(parents=True)
    shutil.copyfile(run_dir / config.MODEL_FILENAME, dest / config.MODEL_FILENAME)
    settings = json.loads((run_dir / "config.json").read_text())
    if calibration is not None:
        settings["calibration"] = calibration
    (dest / "config.json").write_text(json.dumps(settings))
    return dest


def test_the_bundled_model_ships_its_network_once_and_is_converted_into_the_cache():
    model_file = BUNDLED / config.MODEL_FILENAME
    assert not (BUNDLED / onnx_runtime.ONNX_FILENAME).exists()  # model.onnx is rebuilt from model.keras, never shipped twice
    found = onnx_runtime.ensure_onnx(model_file)
    assert found.is_relative_to(config.cache_dir()) and onnx_runtime.current_onnx(model_file) == found
    record = json.loads(onnx_runtime.record_path(found).read_text())
    assert record["source_sha256"] == hashing.file_sha256(model_file)
    assert record["openset_sha256"] == hashing.file_sha256(BUNDLED / "openset.npz")  # its graph computes the check


def test_bundled_model_runs_on_onnxruntime_and_matches_keras_on_real_photos():
    ort = Predictor.load(BUNDLED)
    tf = Predictor.load(BUNDLED, backend="tensorflow")
    assert (ort.backend, tf.backend) == ("onnxruntime", "tensorflow")
    assert Path(ort.onnx_file).is_relative_to(config.cache_dir()) and ort._model is None
    batch = np.stack([ort.preprocess(p) for p in SAMPLES])
    np.testing.assert_allclose(ort.raw_probs(batch), tf.raw_probs(batch), atol=PARITY, rtol=0)
    np.testing.assert_allclose(ort.predict_arrays(batch), tf.predict_arrays(batch), atol=PARITY, rtol=0)
    assert [r.label for r in ort.predict(SAMPLES)] == [r.label for r in tf.predict(SAMPLES)]
    assert [r.not_pet for r in ort.predict(SAMPLES)] == [r.not_pet for r in tf.predict(SAMPLES)]


def test_finished_training_writes_a_current_model_onnx(tiny_run):
    onnx_file = tiny_run.path / onnx_runtime.ONNX_FILENAME
    assert onnx_runtime.current_onnx(tiny_run.model_path) == onnx_file
    record = json.loads(onnx_runtime.record_path(onnx_file).read_text())
    assert record["source"] == config.MODEL_FILENAME and record["input"]["dtype"] == "uint8"
    assert record["source_sha256"] == hashing.file_sha256(tiny_run.model_path)


def test_model_without_onnx_is_converted_once_into_the_cache_and_calibrated_like_keras(tmp_path, tiny_run, monkeypatch):
    run_dir = _copy_model(tiny_run.path, tmp_path / "copy", calibration={"temperature": 2.5, "uncertain_below": 0.8})
    ort = Predictor.load(run_dir)
    assert ort.backend == "onnxruntime" and ort.temperature == 2.5
    assert Path(ort.onnx_file).is_relative_to(config.cache_dir())
    assert not (run_dir / "model.onnx").exists()  # a user's folder is never written to implicitly

    monkeypatch.setattr(onnx_runtime, "convert", lambda *a, **k: pytest.fail("converted twice"))
    assert Predictor.load(run_dir).onnx_file == ort.onnx_file

    tf = Predictor.load(run_dir, backend="tensorflow")
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (6, ort.image_size, ort.image_size, 3), dtype=np.uint8)
    np.testing.assert_allclose(ort.predict_arrays(batch), tf.predict_arrays(batch), atol=PARITY, rtol=0)
    assert not np.allclose(ort.predict_arrays(batch), ort.raw_probs(batch))  # the temperature was applied


def test_onnx_made_from_another_model_file_is_not_used(tmp_path, tiny_run):
    run_dir = _copy_model(tiny_run.path, tmp_path / "copy")
    shutil.copyfile(tiny_run.path / "model.onnx", run_dir / "model.onnx")
    record = json.loads(onnx_runtime.record_path(tiny_run.path / "model.onnx").read_text())
    onnx_runtime.record_path(run_dir / "model.onnx").write_text(json.dumps({**record, "source_sha256": "0" * 64}))
    assert onnx_runtime.current_onnx(run_dir / config.MODEL_FILENAME) in (None, onnx_runtime.cached_path(record["source_sha256"]))


def test_falls_back_to_tensorflow_without_onnxruntime(tiny_run, monkeypatch):
    monkeypatch.setattr(onnx_runtime, "onnxruntime_available", lambda: False)
    assert Predictor.load(tiny_run.path).backend == "tensorflow"
    with pytest.raises(RunError, match="needs onnxruntime"):
        Predictor.load(tiny_run.path, backend="onnxruntime")


def test_falls_back_to_tensorflow_when_conversion_fails(tmp_path, tiny_run, monkeypatch):
    def broken(*args, **kwargs):
        raise CatdogError("converter exploded")

    monkeypatch.setattr(onnx_runtime, "convert", broken)
    monkeypatch.setenv("CATDOG_CACHE_DIR", str(tmp_path / "empty-cache"))
    run_dir = _copy_model(tiny_run.path, tmp_path / "fresh")
    predictor = Predictor.load(run_dir)
    assert predictor.backend == "tensorflow"
    assert predictor.predict_one(image_bytes()).ok


def test_backend_is_checked_and_mixed_precision_stays_on_tensorflow(tiny_run):
    with pytest.raises(ValueError, match="backend must be one of"):
        Predictor.load(tiny_run.path, backend="tpu")
    assert Predictor.load(tiny_run.path, precision="mixed_bfloat16").backend == "tensorflow"
    assert Predictor.load(tiny_run.path, precision="float32").backend == "onnxruntime"


def test_training_still_finishes_when_onnx_cannot_be_written(tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_runtime, "ensure_onnx", lambda *a, **k: (_ for _ in ()).throw(CatdogError("no converter")))
    lines: list[str] = []
    assert onnx_runtime.write_onnx(tmp_path, logger=lines.append) is None
    assert "no model.onnx written" in lines[0]


def test_gradcam_gets_the_keras_model_on_first_use():
    from catdog.gradcam import explain

    predictor = Predictor.load(BUNDLED)
    assert predictor.backend == "onnxruntime" and predictor._model is None
    heat, overlay = explain(predictor, SAMPLES[0], max_side=64)
    assert predictor._model is not None and heat.shape == overlay.size[::-1]


def test_parallel_batch_decoding_keeps_order_and_per_file_errors(tiny_run):
    predictor = Predictor.load(tiny_run.path)
    good = [image_bytes(colour=(200, 60, 40), seed=i) for i in range(6)]
    sources = good[:3] + [b"not an image"] + good[3:] + [b""]
    results = predictor.predict(sources, [f"f{i}" for i in range(len(sources))])
    assert [r.file for r in results] == [f"f{i}" for i in range(len(sources))]
    assert [r.ok for r in results] == [True] * 3 + [False] + [True] * 3 + [False]
    assert "not a supported image" in results[3].error and "empty" in results[7].error
    one_by_one = [predictor.predict_one(s).p_dog for s in good]
    assert [r.p_dog for r in results if r.ok] == pytest.approx(one_by_one, abs=1e-7)


_NO_TF = """
import json, sys
from catdog.cli import main
status = main(sys.argv[1:])
print(json.dumps({"status": status, "tensorflow": "tensorflow" in sys.modules, "keras": "keras" in sys.modules}))
"""


def _run_cli_without_tf(*args: str) -> tuple[dict, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "CATDOG_PREDICT_BACKEND")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", _NO_TF, *args], capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    *lines, last = proc.stdout.strip().splitlines()
    return json.loads(last), "\n".join(lines), proc.stderr


def test_catdog_predict_never_imports_tensorflow_when_the_model_has_onnx():
    modules, out, err = _run_cli_without_tf("predict", "assets/samples/cat-1.jpg", "--json")
    assert modules == {"status": 0, "tensorflow": False, "keras": False}
    assert json.loads(out)["backend"] == "onnxruntime" and json.loads(out)["label"] == "cat"
    assert err == ""  # no TensorFlow (or any other) log line


def test_catdog_evaluate_never_imports_tensorflow_when_the_model_has_onnx(tmp_path):
    data = make_class_folders(tmp_path / "data", n=3, size=(40, 40))
    modules, out, err = _run_cli_without_tf("evaluate", "--data", str(data), "--json")
    assert modules == {"status": 0, "tensorflow": False, "keras": False}
    summary = json.loads(out)
    assert summary["backend"] == "onnxruntime" and summary["n"] == 6
    assert err == ""


@pytest.mark.slow
@pytest.mark.realdata
def test_onnxruntime_and_keras_give_the_same_labels_on_the_validation_photos():
    from catdog import data

    folder = SHARED_DATA / "validation"
    if not folder.is_dir():
        pytest.skip(f"validation photos not found at {folder}; the parity check needs ../shared/data/catdog-small")
    ort = Predictor.load(BUNDLED)
    tf = Predictor.load(BUNDLED, backend="tensorflow")
    images, _ = data.load_labelled_folder(folder, ort.class_names)
    decoded = data.decode_images(images, ort.image_size, cache="memory")
    batches = [np.asarray(decoded.images[i : i + 64]) for i in range(0, len(decoded), 64)]
    p_ort = np.concatenate([ort.predict_arrays(b) for b in batches])
    p_tf = np.concatenate([tf.predict_arrays(b) for b in batches])
    assert len(p_ort) == len(decoded) > 100
    assert np.array_equal(p_ort >= ort.threshold, p_tf >= tf.threshold)
    assert np.abs(p_ort - p_tf).max() < 1e-4


def test_int8_export_is_opt_in_and_reports_the_accuracy_change(tmp_path, tiny_run, tiny_dataset):
    import io

    from catdog.cli import main

    out, err = io.StringIO(), io.StringIO()
    target = tmp_path / "m-int8.onnx"
    args = ["export", str(tiny_run.path), "--format", "onnx", "--quantize", "int8", "--out", str(target),
            "--calibration-data", str(tiny_dataset), "--calibration-images", "8", "--check-data", str(tiny_dataset)]
    assert main(args, out=out, err=err) == 0, err.getvalue()
    assert "int8 check on 24 photos: accuracy" in out.getvalue() and "labels flipped" in out.getvalue()
    info = json.loads((tmp_path / "m-int8.onnx.catdog.json").read_text())
    assert info["quantization"]["calibration_images"] == 8 and info["quantization"]["check"]["n"] == 24
    p = onnx_runtime.OnnxModel(target)(np.zeros((2, 32, 32, 3), np.uint8))
    assert p.shape == (2,) and np.all((p >= 0) & (p <= 1))
    assert main(["export", str(tiny_run.path), "--format", "tflite", "--quantize", "int8"], out=out, err=err) == 2
    assert "needs --format onnx" in err.getvalue()


_PAGE_NO_TF = """
import json, sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file("streamlit_app.py", default_timeout=120).run()
at = at.switch_page("pages/predict.py").run()
at.button(key="sample_cat-1.jpg").click().run()
cards = [m.value for m in at.markdown if m.value.startswith("### ")]
print(json.dumps({"exception": bool(at.exception), "cards": cards, "tensorflow": "tensorflow" in sys.modules}))
"""


@pytest.mark.slow
def test_predict_page_classifies_a_sample_without_importing_tensorflow():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    env.pop("CATDOG_PREDICT_BACKEND", None)
    proc = subprocess.run([sys.executable, "-c", _PAGE_NO_TF], capture_output=True, text=True, timeout=180, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["exception"] is False and len(result["cards"]) == 1 and "Cat" in result["cards"][0]
    assert result["tensorflow"] is False
