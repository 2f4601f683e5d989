"""Large 16-bit and RGBA images convert without float64 copies: peak memory stays near the pixels' own size."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catdog.preprocess import to_rgb
from tests.fixtures import REPO

SIDE = 3000  # 9 megapixels: big enough to measure, small enough for a shared CI machine


def _png16(path: Path, side: int = SIDE) -> Path:
    ramp = (np.arange(side, dtype=np.uint32) * 65535 // max(1, side - 1)).astype(np.uint16)
    Image.fromarray(np.broadcast_to(ramp, (side, side)).copy()).save(path)  # mode I;16, compresses to little
    return path


def _png_rgba(path: Path, side: int = SIDE) -> Path:
    ramp = (np.arange(side) * 255 // max(1, side - 1)).astype(np.uint8)
    rgba = np.empty((side, side, 4), np.uint8)
    rgba[..., 0] = ramp
    rgba[..., 1] = ramp[:, None]
    rgba[..., 2] = 128
    rgba[..., 3] = ramp[::-1]
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def test_16_bit_conversion_allocates_about_4_bytes_per_pixel_in_numpy(tmp_path, stats):
    img = Image.open(_png16(tmp_path / "deep.png"))
    img.load()
    assert img.mode.startswith("I;16")
    tracemalloc.start()
    try:
        rgb = to_rgb(img)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    stats.input(True)
    assert rgb.mode == "RGB" and rgb.size == (SIDE, SIDE)
    assert peak <= 4.5 * SIDE * SIDE, f"{peak / SIDE / SIDE:.1f} bytes per pixel in numpy temporaries"
    assert np.asarray(rgb)[0, -1, 0] == 255 and np.asarray(rgb)[0, 0, 0] == 0


PEAK_CHILD = textwrap.dedent(
    """
    import sys
    from catdog.preprocess import load_array

    def peak_kb():
        with open("/proc/self/status") as fh:
            return int(next(line for line in fh if line.startswith("VmHWM:")).split()[1])

    path, small, side = sys.argv[1], sys.argv[2], int(sys.argv[3])
    load_array(small, 64)  # imports and Pillow's plugins, on a small image
    before = peak_kb()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset the peak to the current resident size
    rss = peak_kb()
    load_array(path, 224)
    print((peak_kb() - rss) * 1024 / (side * side))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["16-bit grey", "RGBA"])
def test_peak_memory_of_a_large_image_stays_near_its_decoded_size(tmp_path, kind, stats):
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux's /proc/self/clear_refs to measure a peak")
    path = (_png16 if kind == "16-bit grey" else _png_rgba)(tmp_path / "big.png", SIDE)
    small = (_png16 if kind == "16-bit grey" else _png_rgba)(tmp_path / "small.png", 64)
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_CHILD, str(path), str(small), str(SIDE)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    per_pixel = float(proc.stdout.strip().splitlines()[-1])
    stats.input(True)
    stats.note(f"peak memory decoding a {SIDE}x{SIDE} {kind} PNG: {per_pixel:.1f} bytes per source pixel")
    # Decoded pixels (2 or 4 bytes), the RGB result (3) and an alpha plane: measured 7 and 9; the float64 path took 16-40.
    assert per_pixel <= 10.5, f"{per_pixel:.1f} bytes per pixel"


def test_conversions_give_the_same_pixels_as_the_float_path(stats):
    rng = np.random.default_rng(0)
    deep = rng.integers(0, 65536, (40, 50), dtype=np.uint16)
    expected = np.clip(np.rint(deep / 257.0), 0, 255).astype(np.uint8)
    assert np.array_equal(np.asarray(to_rgb(Image.fromarray(deep)))[..., 0], expected)
    rgba = Image.fromarray(rng.integers(0, 256, (40, 50, 4), dtype=np.uint8), "RGBA")
    over_white = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    assert np.array_equal(np.asarray(to_rgb(rgba)), np.asarray(over_white))
    stats.input(True, n=2)
