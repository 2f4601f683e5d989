"""The hostile image corpus: every odd file a user may drop on catdog, generated in memory.

Each `Case` says what must happen on every path: a correct result (with a pixel
check on the 32x32 model input) or a clear per-file `ImageError` whose message
matches `error`.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

STRIP = r"aspect ratio of [\d,]+:1; the limit is \d+:1.*crop it first"
BOMB = r"(too large to decode safely|megapixels).*decompression-bomb guard.*resize it first"
SIZE = 32  # the model input size the checks are written for
RED, GREEN, BLUE, WHITE, BLACK = (220, 30, 30), (30, 200, 40), (30, 40, 220), (255, 255, 255), (0, 0, 0)


@dataclass(frozen=True)
class Case:
    """One hostile input and what every path must make of it."""

    name: str
    data: bytes
    ok: bool
    error: str = ""  # regex the ImageError message must match (when not ok)
    check: Callable[[np.ndarray], None] | None = None  # pixel assertion on the SIZE x SIZE input

    def __repr__(self) -> str:
        return f"Case({self.name!r}, {len(self.data)} bytes, ok={self.ok})"


def near(pixel, colour, tol: int = 30) -> bool:
    return bool(np.all(np.abs(np.asarray(pixel, int) - np.asarray(colour, int)) <= tol))


def expect(**where: tuple) -> Callable[[np.ndarray], None]:
    """A check: `expect(left=RED, right=BLUE)` samples the middle of each named region."""
    spots = {"left": (SIZE // 2, 3), "right": (SIZE // 2, SIZE - 4), "top": (3, SIZE // 2),
             "bottom": (SIZE - 4, SIZE // 2), "centre": (SIZE // 2, SIZE // 2)}

    def check(arr: np.ndarray) -> None:
        assert arr.shape == (SIZE, SIZE, 3) and arr.dtype == np.uint8, (arr.shape, arr.dtype)
        for spot, colour in where.items():
            got = arr[spots[spot]]
            assert near(got, colour), f"{spot} pixel is {got.tolist()}, expected about {colour}"

    return check


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def halves(left, right, size=(48, 32), mode="RGB") -> Image.Image:
    """An image whose left half is one colour and right half another."""
    w, h = size
    img = Image.new(mode, size, left)
    img.paste(right, (w // 2, 0, w, h))
    return img


def exif_rotated(orientation: int) -> bytes:
    """A JPEG stored left-red/right-blue, with an EXIF orientation tag."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(halves(RED, BLUE), "JPEG", quality=95, exif=exif.tobytes())


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_bomb(side: int = 30000) -> bytes:
    """A valid 1-bit PNG, side x side pixels of zeros: ~100 KB that decodes to side^2 pixels."""
    row = b"\x00" * (1 + (side + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def png_strip(width: int, height: int, pixels: bool = True) -> bytes:
    """A grey PNG of any shape, built row by row (header only unless `pixels`): 1 x 119,999,999 was 230 KB and took 4.4 GB."""
    idat = zlib.compress((b"\x00\x80" + b"\x80" * (width - 1)) * height, 9) if pixels else b""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + (png_chunk(b"IDAT", idat) if pixels else b"") + png_chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header claims width x height pixels."""
    data = bytearray(encode(Image.new("RGB", (16, 16), RED), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_claiming(width: int, height: int) -> bytes:
    """A tiny GIF whose logical screen claims width x height pixels."""
    data = bytearray(encode(Image.new("P", (4, 4), 0), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (40, 40), c).convert("P") for c in (RED, BLUE, GREEN)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def sixteen_bit_png() -> bytes:
    arr = np.zeros((32, 48), np.uint16)
    arr[:, 24:] = 65535
    arr[:, :24] = 0
    return encode(Image.fromarray(arr), "PNG")


def alpha_png() -> bytes:
    img = Image.new("RGBA", (48, 32), (0, 0, 0, 0))  # transparent black: must become white
    img.paste((30, 40, 220, 255), (24, 0, 48, 32))
    return encode(img, "PNG")


def palette_gif() -> bytes:
    return encode(halves(RED, GREEN).convert("P", palette=Image.Palette.ADAPTIVE, colors=4), "GIF")


def huge(fmt: str, side: int = 10000) -> bytes:
    """side x side pixels, black left half, white right half."""
    img = Image.new("L", (side, side), 0)
    img.paste(255, (side // 2, 0, side, side))
    if fmt == "PNG":
        return encode(img, "PNG", compress_level=1)
    return encode(img.convert("RGB"), "JPEG", quality=75)


def broken_exif_jpeg() -> bytes:
    data = encode(Image.new("RGB", (40, 40), RED), "JPEG", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff garbage")
    return data


def build_corpus(include_huge: bool = True) -> list[Case]:
    """Every hostile input, with its expected outcome."""
    red_jpeg = encode(Image.new("RGB", (40, 30), RED), "JPEG", quality=95)
    big_jpeg = encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), np.uint8)), "JPEG")
    cmyk = Image.new("RGB", (40, 40), RED).convert("CMYK")
    cases = [
        Case("zero-bytes.jpg", b"", False, r"empty \(0 bytes\)"),
        Case("truncated.jpg", big_jpeg[: len(big_jpeg) // 2], False, r"truncated|corrupt"),
        Case("truncated-header.jpg", big_jpeg[:40], False, r"truncated|corrupt|not a supported image"),
        Case("truncated.png", encode(halves(RED, BLUE, (300, 200)), "PNG")[:300], False, r"truncated|corrupt"),
        Case("jpeg-named.png", red_jpeg, True, check=expect(centre=RED)),
        Case("png-named.jpg", encode(halves(RED, BLUE), "PNG"), True, check=expect(left=RED, right=BLUE)),
        Case("text-named.jpg", b"this is a shopping list, not a photo\nmilk\neggs\n" * 4, False, r"not a supported image.*text"),
        Case("random-noise.jpg", bytes(np.random.default_rng(1).integers(0, 256, 4096, np.uint8)), False, r"not a supported image|corrupt"),
        Case("alpha.png", alpha_png(), True, check=expect(left=WHITE, right=BLUE)),
        Case("gray-alpha.png", encode(halves((90, 255), (200, 0), mode="LA"), "PNG"), True, check=expect(left=(90, 90, 90), right=WHITE)),
        Case("palette.gif", palette_gif(), True, check=expect(left=RED, right=GREEN)),
        Case("animated.gif", animated_gif(), True, check=expect(left=RED, centre=RED, right=RED)),
        Case("sixteen-bit.png", sixteen_bit_png(), True, check=expect(left=BLACK, right=WHITE)),
        Case("cmyk.jpg", encode(cmyk, "JPEG", quality=95), True, check=expect(centre=RED)),
        Case("grayscale.jpg", encode(Image.new("L", (40, 40), 100), "JPEG"), True, check=expect(centre=(100, 100, 100))),
        Case("bilevel.png", encode(halves(0, 1, mode="1"), "PNG"), True, check=expect(left=BLACK, right=WHITE)),
        Case("lossless.webp", encode(halves(RED, BLUE), "WEBP", lossless=True), True, check=expect(left=RED, right=BLUE)),
        Case("photo.bmp", encode(halves(RED, BLUE), "BMP"), True, check=expect(left=RED, right=BLUE)),
        Case("photo.tiff", encode(halves(RED, BLUE), "TIFF"), True, check=expect(left=RED, right=BLUE)),
        # EXIF orientation 6 = rotate 90 degrees clockwise to display: the stored left edge becomes the top.
        Case("exif-orientation-6.jpg", exif_rotated(6), True, check=expect(top=RED, bottom=BLUE)),
        Case("exif-orientation-3.jpg", exif_rotated(3), True, check=expect(left=BLUE, right=RED)),
        Case("exif-orientation-8.jpg", exif_rotated(8), True, check=expect(top=BLUE, bottom=RED)),
        Case("broken-exif.jpg", broken_exif_jpeg(), True, check=expect(centre=RED)),
        Case("one-pixel.png", encode(Image.new("RGB", (1, 1), GREEN), "PNG"), True, check=expect(left=GREEN, right=GREEN)),
        Case("one-pixel.jpg", encode(Image.new("RGB", (1, 1), GREEN), "JPEG", quality=100), True, check=expect(centre=GREEN)),
        Case("bomb-30000x30000.png", png_bomb(), False, BOMB),
        Case("bomb-12000x12000.png", png_bomb(12000), False, BOMB),
        Case("bomb-header-60000x60000.jpg", jpeg_claiming(60000, 60000), False, BOMB),
        Case("bomb-screen-65535x65535.gif", gif_claiming(65535, 65535), False, BOMB),
        Case("strip-1x20000.png", png_strip(1, 20000), False, STRIP),
        Case("strip-40000x2.png", png_strip(40000, 2), False, STRIP),
        Case("strip-header-1x119999999.png", png_strip(1, 119_999_999, pixels=False), False, STRIP),
        Case("vector.svg", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
             b'<rect width="64" height="64" fill="red"/></svg>', False, r"not a supported image.*SVG"),
        Case("svg-named.jpg", b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>', False, r"SVG"),
        Case("iphone.heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200), False, r"not a supported image.*HEIC"),
    ]
    if include_huge:
        cases += [
            Case("huge-10000x10000.png", huge("PNG"), True, check=expect(left=BLACK, right=WHITE)),
            Case("huge-10000x10000.jpg", huge("JPEG"), True, check=expect(left=BLACK, right=WHITE)),
        ]
    return cases
