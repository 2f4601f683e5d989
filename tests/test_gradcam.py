"""Grad-CAM heatmaps and overlays for every preset, on tiny random-weight models."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(autouse=True)
def _no_pretrained_download(monkeypatch):
    monkeypatch.setenv("CATDOG_PRETRAINED", "0")


def _picture(h: int = 50, w: int = 70, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("preset", ["seed", "compact", "lite0"])
def test_heatmap_has_input_shape_and_unit_range_for_every_preset(preset):
    from catdog.gradcam import gradcam
    from catdog.models import build_model

    model = build_model(preset, 32, compile=False)
    heat = gradcam(model, _picture())
    assert heat.shape == (50, 70)
    assert heat.dtype == np.float32
    assert np.isfinite(heat).all()
    assert heat.min() >= 0.0 and heat.max() <= 1.0


def test_target_layer_is_the_last_feature_map_of_every_preset():
    from catdog.gradcam import find_target_layer
    from catdog.models import build_model

    compact = build_model("compact", 32, compile=False)
    pool = next(layer for layer in compact.layers if type(layer).__name__ == "GlobalAveragePooling2D")
    assert find_target_layer(compact) is pool.input._keras_history.operation  # the map that is pooled
    assert find_target_layer(build_model("lite0", 32, compile=False)).name == "head_relu"  # the 1280 maps that are pooled
    assert type(find_target_layer(build_model("seed", 32, compile=False))).__name__ == "BatchNormalization"


def test_constant_image_gives_finite_heatmap_without_crash():
    from catdog.gradcam import gradcam
    from catdog.models import build_model

    heat = gradcam(build_model("seed", 32, compile=False), np.zeros((40, 40, 3), np.uint8))
    assert heat.shape == (40, 40) and np.isfinite(heat).all() and heat.max() <= 1.0


def test_zero_gradients_give_all_zero_heatmap(monkeypatch):
    import keras

    from catdog.gradcam import gradcam

    inputs = keras.Input((32, 32, 3))
    maps = keras.layers.Conv2D(4, 3, name="conv", kernel_initializer="zeros")(inputs)
    out = keras.layers.Dense(1, activation="sigmoid", kernel_initializer="zeros")(keras.layers.GlobalAveragePooling2D()(maps))
    heat = gradcam(keras.Model(inputs, out), _picture())
    assert not heat.any()


def test_named_layer_is_used_and_unknown_name_is_a_clear_error():
    from catdog.errors import CatdogError
    from catdog.gradcam import gradcam
    from catdog.models import build_model

    model = build_model("compact", 32, compile=False)
    assert gradcam(model, _picture(), layer_name="block2_add").shape == (50, 70)
    with pytest.raises(CatdogError, match="no layer 'nope'"):
        gradcam(model, _picture(), layer_name="nope")


def test_heatmap_explains_the_predicted_class_not_always_dog():
    from catdog.gradcam import gradcam
    from catdog.models import build_model

    model = build_model("compact", 32, compile=False)
    image = _picture(seed=3)
    # A threshold above or below P(dog) flips the predicted label, so the maps differ.
    as_dog = gradcam(model, image, threshold=0.0)
    as_cat = gradcam(model, image, threshold=1.01)
    assert not np.allclose(as_dog, as_cat)


def test_overlay_is_rgb_image_of_input_size():
    from catdog.gradcam import overlay

    image = _picture()
    heat = np.linspace(0, 1, 50 * 70, dtype=np.float32).reshape(50, 70)
    out = overlay(image, heat, alpha=0.4)
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (70, 50)
    assert not np.array_equal(np.asarray(out), image)  # the colour map is actually blended in
    assert np.array_equal(np.asarray(overlay(image, heat, alpha=0.0)), image)


def test_cli_predict_explain_writes_one_overlay_per_good_image_and_keeps_output(tmp_path, tiny_run):
    import io
    import json

    from catdog.cli import main
    from tests.fixtures import write_image

    cat = write_image(tmp_path / "in" / "cat.jpg", size=(60, 44), seed=5)
    bad = tmp_path / "in" / "bad.jpg"
    bad.write_text("not an image")
    out_dir = tmp_path / "explained"
    out, err = io.StringIO(), io.StringIO()
    code = main(["predict", str(cat), str(bad), "--model", str(tiny_run.path), "--json", "--explain", str(out_dir)], out=out, err=err)
    assert code == 1  # a bad file still fails the command, as without --explain
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["file"] for line in lines] == [str(cat), str(bad)]
    assert sorted(p.name for p in out_dir.iterdir()) == ["cat.gradcam.png"]
    with Image.open(out_dir / "cat.gradcam.png") as img:
        assert img.mode == "RGB" and img.size == (60, 44)


def test_cli_explain_keeps_one_overlay_per_image_when_names_collide(tmp_path, tiny_run):
    import io

    from catdog.cli import main
    from tests.fixtures import write_image

    first = write_image(tmp_path / "a" / "pet.jpg", size=(40, 30), seed=1)
    second = write_image(tmp_path / "b" / "pet.png", size=(50, 30), seed=2, fmt="PNG")
    out_dir = tmp_path / "explained"
    code = main(
        ["predict", str(first), str(second), "--model", str(tiny_run.path), "--explain", str(out_dir)], out=io.StringIO(), err=io.StringIO()
    )
    assert code == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["pet-2.gradcam.png", "pet.gradcam.png"]
    with Image.open(out_dir / "pet-2.gradcam.png") as img:
        assert img.size == (50, 30)  # the second file's overlay, not the first one overwritten


def test_a_saturated_answer_is_still_explained_through_its_logit():
    """P(dog) that is 1.0 in float32 has no gradient; the map comes from the logit, so certainty changes nothing."""
    import keras

    from catdog.gradcam import gradcam
    from catdog.models import build_model
    from catdog.models.layers import OUTPUT_NAME

    keras.utils.set_random_seed(5)  # the same random network whatever ran before (a map can be all zero for some)
    model = build_model("compact", 32, compile=False)
    image = _picture(seed=5)
    for threshold in (0.0, 1.01):  # explained as dog, else as cat: a random network's map can be all zero one way
        plain = gradcam(model, image, threshold=threshold)
        if plain.any():
            break
    assert plain.max() == pytest.approx(1.0)
    head = model.get_layer(OUTPUT_NAME)
    head.bias.assign(head.bias.numpy() + 100.0)  # sigmoid(z + 100) == 1.0 in float32
    assert float(model(image[None, :32, :32].astype("float32"), training=False)[0, 0]) == 1.0
    from catdog import gradcam as module

    module._CACHE.clear()
    saturated = gradcam(model, image, threshold=threshold)
    assert saturated.max() == pytest.approx(1.0)  # not the all-zero map a probability's gradient gives
    np.testing.assert_allclose(saturated, plain, atol=1e-4)
