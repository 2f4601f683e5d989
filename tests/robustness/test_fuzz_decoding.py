"""Property tests: random bytes and mutated images into the decoding path.

The only exception that may come out of `load_array` is catdog's `ImageError`;
anything else (or a hang, bounded by an alarm) fails the test.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from catdog.errors import ImageError
from catdog.preprocess import load_array
from tests.robustness.corpus import RED, animated_gif, encode, exif_rotated, halves

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

HANG_SECONDS = 10  # one decode of a tiny input takes milliseconds; this is a hang
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

SEEDS = {
    "jpeg": encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 56, 3), np.uint8)), "JPEG"),
    "exif-jpeg": exif_rotated(6),
    "png": encode(halves(RED, (0, 0, 255, 128), mode="RGBA"), "PNG"),
    "gif": animated_gif(),
    "webp": encode(halves(RED, (0, 0, 255)), "WEBP"),
    "bmp": encode(halves(RED, (0, 0, 255)), "BMP"),
    "tiff": encode(halves(RED, (0, 0, 255)), "TIFF"),
}


@contextmanager
def no_hang(seconds: int = HANG_SECONDS):
    """Fail (instead of hanging forever) when the body takes longer than `seconds`."""

    def alarm(signum, frame):
        raise TimeoutError(f"decoding hung for more than {seconds}s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def decode_or_refuse(data: bytes, stats) -> None:
    """Decode; only a result of the right shape or an ImageError is acceptable."""
    try:
        with no_hang():
            arr = load_array(data, 32)
    except ImageError:
        stats.input(False)
        return
    except BaseException as exc:
        stats.error(f"fuzz: {type(exc).__name__}: {exc} for {len(data)} bytes starting {data[:16]!r}")
        raise
    stats.input(True)
    assert arr.shape == (32, 32, 3) and arr.dtype == np.uint8


@st.composite
def mutated(draw) -> bytes:
    """A valid image with bytes flipped, inserted, deleted or cut off."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "big-number"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip":
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del data[pos:]
        else:  # a size or length field blown up to its maximum
            data[pos : pos + 2] = b"\xff\xff"
    return bytes(data)


@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes_give_an_image_error_or_an_image(data, stats):
    decode_or_refuse(data, stats)


@FUZZ
@given(magic=st.sampled_from(sorted(seed[:12] for seed in SEEDS.values())), tail=st.binary(max_size=256))
def test_image_magic_numbers_with_garbage_give_an_image_error_or_an_image(magic, tail, stats):
    decode_or_refuse(magic + tail, stats)


@settings(FUZZ, max_examples=500)
@given(data=mutated())
def test_mutated_jpegs_pngs_gifs_webps_give_an_image_error_or_an_image(data, stats):
    decode_or_refuse(data, stats)
