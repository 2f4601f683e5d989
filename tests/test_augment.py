"""`RandomCropAugment` ("crop" augmentation): off at inference, on in training, exact geometry, saved and exported."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.fixtures import REPO

pytestmark = pytest.mark.slow  # TensorFlow models

# Every random part switched off: the layer must then return its input, through either resampling path.
STILL = dict(scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False, contrast=0.0, brightness=0.0, grayscale=0.0)


def _images(n: int = 4, size: int = 24) -> np.ndarray:
    return np.random.default_rng(0).random((n, size, size, 3)).astype("float32")


@pytest.mark.parametrize("rotation", [0.0, 10.0])
def test_inactive_at_inference_and_changes_images_in_training(rotation):
    from catdog.models.augment import RandomCropAugment

    layer = RandomCropAugment(rotation=rotation, seed=3)
    x = _images()
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    y = np.asarray(layer(x, training=True))
    assert y.shape == x.shape and y.dtype == np.float32
    assert 0.0 <= y.min() and y.max() <= 1.0
    assert np.abs(y - x).mean() > 0.05


@pytest.mark.parametrize("rotation", [0.0, 1e-6])  # 0: crop_and_resize; > 0: one affine transform
def test_geometry_is_exact_without_randomness_and_flip_mirrors(rotation):
    from catdog.models.augment import RandomCropAugment

    x = _images(8)
    still = RandomCropAugment(rotation=rotation, **STILL, seed=1)
    np.testing.assert_allclose(np.asarray(still(x, training=True)), x, atol=1e-4)
    flips = RandomCropAugment(rotation=rotation, **dict(STILL, flip=True), seed=1)
    y = np.asarray(flips(x, training=True))
    mirrored = [np.allclose(y[i], x[i, :, ::-1], atol=1e-4) for i in range(len(x))]
    kept = [np.allclose(y[i], x[i], atol=1e-4) for i in range(len(x))]
    assert all(m != k for m, k in zip(mirrored, kept))  # each image mirrored or kept, nothing in between
    assert any(mirrored) and any(kept)


def test_a_crop_magnifies_part_of_the_image():
    from catdog.models.augment import RandomCropAugment

    x = np.zeros((16, 32, 32, 3), "float32")
    x[:, 14:18, 14:18] = 1.0  # a small bright square in the middle
    zoom = RandomCropAugment(**dict(STILL, scale=(0.25, 0.25)), rotation=0.0, seed=2)
    y = np.asarray(zoom(x, training=True))
    bright = (y > 0.5).mean(axis=(1, 2, 3))
    # a quarter of the area, shown at full size: the square is 4x bigger wherever the crop kept it
    assert bright.max() == pytest.approx(4 * (x > 0.5).mean(axis=(1, 2, 3))[0], rel=0.35)


def test_same_seed_same_draws_and_mixed_precision_dtype_kept():
    import keras

    from catdog.models.augment import RandomCropAugment

    x = _images()
    a, b = RandomCropAugment(seed=7), RandomCropAugment(seed=7)
    np.testing.assert_array_equal(np.asarray(a(x, training=True)), np.asarray(b(x, training=True)))
    half = RandomCropAugment(seed=7, dtype="mixed_bfloat16")
    out = half(keras.ops.cast(x, "bfloat16"), training=True)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16" and tuple(out.shape) == x.shape


@pytest.mark.parametrize("argument, value", [("scale", (0.5, 1.5)), ("ratio", (2.0, 1.0)), ("rotation", -1.0), ("grayscale", 2.0)])
def test_bad_settings_name_the_argument(argument, value):
    from catdog.models.augment import RandomCropAugment

    with pytest.raises(ValueError, match=argument):
        RandomCropAugment(**{argument: value})


def test_compact_with_crop_predicts_like_the_same_weights_without_augmentation():
    from catdog.models import build_model
    from catdog.training import copy_weights

    crop = build_model("compact", 32, compile=False, augment="crop")
    plain = build_model("compact", 32, compile=False, augment="standard")
    copy_weights(crop, plain)
    batch = np.random.default_rng(1).integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    first = np.asarray(crop(batch, training=False))
    np.testing.assert_array_equal(first, np.asarray(crop(batch, training=False)))
    np.testing.assert_allclose(first, np.asarray(plain(batch, training=False)), rtol=1e-6, atol=1e-7)
    assert first.shape == (4, 1) and first.dtype == np.float32
    assert any(layer.name == "aug_crop" for layer in crop.layers)


def test_saved_model_loads_and_warm_starts_in_a_fresh_process_through_catdog(tmp_path):
    from catdog.models import build_model

    model = build_model("compact", 32, compile=False, augment="crop")
    path = tmp_path / "crop.keras"
    model.save(path)
    batch = np.random.default_rng(2).integers(0, 256, size=(2, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "batch.npy", batch)
    np.save(tmp_path / "want.npy", np.asarray(model(batch, training=False)))
    # A fresh process that has built no "crop" model: loading must register the layer by itself.
    code = (
        "import sys, numpy as np; from catdog.models import build_model, load_keras; "
        "from catdog.training import init_weights_from; d = sys.argv[1]; "
        "m = load_keras(d + '/crop.keras'); layer = m.get_layer('aug_crop'); "
        "assert type(layer).__name__ == 'RandomCropAugment' and layer.rotation == 10.0, layer; "
        "want = np.load(d + '/want.npy'); x = np.load(d + '/batch.npy'); "
        "np.testing.assert_allclose(np.asarray(m(x, training=False)), want, rtol=1e-6); "
        "t = build_model('compact', 32, compile=False, augment='standard'); init_weights_from(t, d + '/crop.keras'); "
        "np.testing.assert_allclose(np.asarray(t(x, training=False)), want, rtol=1e-6)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_tflite_export_of_a_crop_model_has_no_random_ops_and_predicts_alike(tmp_path):
    tf = pytest.importorskip("tensorflow")
    from catdog.export import export_model
    from catdog.models import build_model

    model = build_model("compact", 32, compile=False, augment="crop")
    model.save(tmp_path / "model.keras")
    out = export_model(tmp_path / "model.keras", "tflite", tmp_path / "m.tflite")
    interpreter = tf.lite.Interpreter(model_path=str(out))
    inp, outp = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    batch = np.random.default_rng(3).integers(0, 256, size=(1, 32, 32, 3)).astype("float32")
    interpreter.resize_tensor_input(inp["index"], [1, 32, 32, 3])
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], batch)
    interpreter.invoke()
    got = interpreter.get_tensor(outp["index"]).reshape(-1)
    np.testing.assert_allclose(got, np.asarray(model(batch, training=False)).reshape(-1), atol=1e-4)


def test_compact_trains_and_resumes_with_crop_augmentation(tmp_path, tiny_dataset):
    import io

    from catdog.predict import Predictor
    from catdog.training import TrainConfig, resume, train

    cfg = TrainConfig(
        data=str(tiny_dataset), model="compact", augment="crop", epochs=1, batch_size=8, image_size=32, val_split=0.25, precision="float32"
    )
    quiet = dict(verbose=0, stream=io.StringIO(), lock=False, handle_signals=False)
    run = train(cfg, runs_dir=tmp_path, run_id="crop", **quiet)
    assert run.status()["state"] == "finished" and run.config()["augment"] == "crop"
    resume(run, epochs=2, **quiet)  # loads the checkpoint, optimizer and RandomCropAugment included
    assert [r["epoch"] for r in run.metrics()] == [1, 2] and run.status()["state"] == "finished"
    model = Predictor.load(run.path, backend="tensorflow").model
    assert type(model.get_layer("aug_crop")).__name__ == "RandomCropAugment"
    onnx = Predictor.load(run.path, backend="onnxruntime")  # model.onnx, converted with the inference graph only
    x = np.random.default_rng(4).integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(onnx.raw_probs(x), np.asarray(model(x, training=False)).reshape(-1), atol=1e-4)


def test_crop_is_compacts_default_and_older_choices_still_build():
    from catdog.models import build_model, get_preset

    assert get_preset("compact").augment == "crop"
    names = {layer.name for layer in build_model("compact", 32, compile=False).layers}
    assert "aug_crop" in names and "aug_rotate" not in names
    older = {layer.name for layer in build_model("compact", 32, compile=False, augment="standard").layers}
    assert {"aug_flip", "aug_rotate", "aug_zoom"} <= older and "aug_crop" not in older
