from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from catdog import data
from catdog.errors import ImageError
from catdog.preprocess import load_array, open_image
from tests.fixtures import image_bytes, write_image


def test_path_bytes_and_pil_give_the_same_array(tmp_path):
    path = write_image(tmp_path / "a.jpg", size=(300, 200), colour=(10, 200, 30))
    from_path = load_array(path, 64)
    from_bytes = load_array(path.read_bytes(), 64)
    from_file = load_array(io.BytesIO(path.read_bytes()), 64)
    assert from_path.shape == (64, 64, 3) and from_path.dtype == np.uint8
    np.testing.assert_array_equal(from_path, from_bytes)
    np.testing.assert_array_equal(from_path, from_file)


@pytest.mark.parametrize("size", [224, 160, 64])
def test_a_large_jpeg_gives_the_same_pixels_as_a_path_bytes_and_a_pil_image(tmp_path, size):
    """A JPEG over twice the model's size is where a draft decode (DCT downscaling) would make a path differ from a PIL image."""
    rng = np.random.default_rng(3)
    arr = (rng.normal(0, 40, (700, 900, 3)) + np.linspace(0, 200, 900)[None, :, None]).clip(0, 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the orientation must be applied on every route
    path = tmp_path / "big.jpg"
    Image.fromarray(arr).save(path, "JPEG", quality=90, exif=exif)
    from_path = load_array(path, size)
    with Image.open(path) as lazy:
        from_pil = load_array(lazy, size)
    with Image.open(path) as decoded:
        decoded.load()
        from_loaded = load_array(decoded, size)
    for other in (load_array(path.read_bytes(), size), load_array(io.BytesIO(path.read_bytes()), size), from_pil, from_loaded):
        np.testing.assert_array_equal(from_path, other)
    assert from_path.shape == (size, size, 3)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_training_dataset_and_predict_path_give_identical_tensors(tmp_path, suffix, tiny_run):
    """The same JPEG/PNG through the tf.data training pipeline and through Predictor."""
    from catdog.predict import Predictor

    root = tmp_path / "ds"
    for name, colour in (("cats", (220, 30, 30)), ("dogs", (30, 30, 220))):
        write_image(root / name / f"x{suffix}", size=(173, 91), colour=colour, fmt="PNG" if suffix == ".png" else "JPEG")
    layout = data.discover(root)
    decoded = data.decode_images(layout.train, 32)
    (batch_x, batch_y), = list(data.make_tf_dataset(decoded, batch_size=8).as_numpy_iterator())
    predictor = Predictor.load(tiny_run.path)
    assert predictor.image_size == 32
    for path, x in zip(decoded.paths, batch_x):
        np.testing.assert_array_equal(x, predictor.preprocess(path))
        np.testing.assert_array_equal(x, predictor.preprocess(path.read_bytes()))
    # The same tensors give the same probabilities through either route.
    np.testing.assert_allclose(
        predictor.predict_arrays(batch_x),
        [r.p_dog for r in predictor.predict(decoded.paths)],
        rtol=1e-6,
    )


def test_pixels_are_uint8_and_model_scales_them_to_unit_range(tiny_run):
    import keras

    model = keras.saving.load_model(tiny_run.model_path, compile=False)
    rescale = model.get_layer("rescale")
    out = rescale(np.full((1, 32, 32, 3), 255, np.float32)).numpy()
    assert out.max() == pytest.approx(1.0)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (80, 40), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 40, 40))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, quality=95)
    shown = open_image(buf.getvalue())
    assert shown.size == (40, 80)
    top = np.asarray(shown)[5, 20]
    assert top[2] > 150 and top[0] < 100  # the blue half is now on top


@pytest.mark.parametrize(
    "mode,colour",
    [("L", None), ("P", None), ("CMYK", None), ("RGBA", None), ("I;16", None)],
)
def test_odd_modes_convert_to_rgb(mode, colour):
    if mode == "I;16":
        arr = np.full((20, 20), 65535, np.uint16)
        img = Image.fromarray(arr)
        buf = io.BytesIO()
        img.save(buf, "PNG")
        out = load_array(buf.getvalue(), 16)
        assert out.shape == (16, 16, 3) and out.min() == 255
        return
    raw = image_bytes((30, 30), (90, 120, 150), fmt="PNG" if mode != "CMYK" else "JPEG", mode=mode)
    out = load_array(raw, 16)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8


def test_transparent_pixels_are_composited_on_white():
    img = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    out = load_array(buf.getvalue(), 8)
    assert (out == 255).all()


@pytest.mark.parametrize(
    "payload,needle",
    [
        (b"", "empty"),
        (b"hello, I am text", "not a supported image"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
    ],
)
def test_bad_bytes_raise_image_error_with_reason(payload, needle):
    with pytest.raises(ImageError, match=needle):
        load_array(payload, 32)


def test_truncated_jpeg_is_reported_not_padded():
    raw = image_bytes((200, 200), fmt="JPEG")
    with pytest.raises(ImageError, match="corrupt or truncated"):
        load_array(raw[: len(raw) // 2], 32)


def test_missing_path_is_reported(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        load_array(tmp_path / "nope.jpg", 32)


def test_bad_image_size_is_a_value_error():
    with pytest.raises(ValueError, match="image_size"):
        load_array(image_bytes(), 0)


def test_display_squares_have_one_size_whatever_the_photo_shape(tmp_path):
    from catdog.preprocess import display_square

    tall, wide = write_image(tmp_path / "tall.jpg", size=(40, 120)), write_image(tmp_path / "wide.png", size=(300, 50))
    assert display_square(tall, 110).size == display_square(wide, 110).size == (110, 110)
    padded = display_square(wide, 110, pad=True)
    assert padded.size == (110, 110) and padded.getpixel((55, 2)) == (244, 246, 250)  # the whole photo, bands above and below
