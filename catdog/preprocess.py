"""The one preprocessing path: path, bytes or PIL image -> model input.

Training, evaluation, prediction, the CLI and the app all call `load_array`.
The model itself rescales pixels to [0, 1] with a `Rescaling` layer, so the
array handed to a model is always uint8 RGB at the model's size, and the saved
model applies the same scaling wherever it is loaded.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path
from typing import IO, Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from catdog import config
from catdog.errors import ImageError

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, Image.Image, IO[bytes]]

# One resize method everywhere. Bilinear with Pillow's antialiasing on downscale.
RESIZE_METHOD = Image.Resampling.BILINEAR

# A truncated JPEG must be reported, not silently padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False
Image.MAX_IMAGE_PIXELS = config.MAX_IMAGE_PIXELS

# Changes whenever the pixels `load_array` gives for a file could change (caches of decoded photos and
# backbone features key on it). 2: no JPEG draft decoding, so a path, bytes and a PIL image give the same pixels.
PREPROCESS_VERSION = 2

# Largest file we read at all: far above any photo, far below a memory problem.
MAX_FILE_BYTES = 200 * 1024 * 1024


def read_bytes(source: ImageSource) -> bytes:
    """Return the raw bytes of a path, a bytes object or a binary file object."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ImageError(f"{str(path)!r} does not exist; check the path")
        if not path.is_file():
            raise ImageError(f"{str(path)!r} is not a file")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ImageError(f"file is {size / 1e6:.0f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB")
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ImageError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from exc
    if hasattr(source, "getvalue"):
        return bytes(source.getvalue())
    if hasattr(source, "read"):
        return bytes(source.read(MAX_FILE_BYTES + 1))
    raise ImageError(f"cannot read an image from a {type(source).__name__}")


def open_image(source: ImageSource, draft_size: int | None = None) -> Image.Image:
    """Open and fully decode an image, with EXIF orientation applied.

    Args:
        source: a path, raw bytes, a binary file object or a PIL image.
        draft_size: let a JPEG decode at a reduced scale that is still at least
            this many pixels on each side (much faster for large photos).

    Raises:
        ImageError: with a message a user can act on, for anything that is
            not a readable image of acceptable size.
    """
    if isinstance(source, Image.Image):
        return _oriented(source)
    data = read_bytes(source)
    if not data:
        raise ImageError("file is empty (0 bytes); re-export or re-download it")
    if len(data) > MAX_FILE_BYTES:  # uploads and file objects arrive as bytes, not paths
        raise ImageError(f"file is {len(data) / 1e6:.0f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            _check_pixels(img)
            img.seek(0)  # animated images: the first frame
            if draft_size and img.format == "JPEG":
                img.draft(img.mode, (draft_size, draft_size))
            img.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(
            f"image is too large to decode safely ({exc}); the limit is {config.MAX_IMAGE_PIXELS / 1e6:.0f} "
            "megapixels (decompression-bomb guard); resize it first"
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"not a supported image ({_sniff(data)}); use JPEG, PNG, GIF, BMP, TIFF or WebP") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, MemoryError) as exc:
        raise ImageError(f"corrupt or truncated image: {exc}; re-export or re-download it") from exc
    except Exception as exc:  # noqa: BLE001 - Pillow plugins raise many types on hostile input
        raise ImageError(f"corrupt image ({type(exc).__name__}: {exc})") from exc
    return _oriented(img)


def _check_pixels(img: Image.Image) -> None:
    width, height = img.size
    if width < 1 or height < 1:
        raise ImageError(f"image has no pixels ({width}x{height})")
    if width * height > config.MAX_IMAGE_PIXELS:
        raise ImageError(
            f"image is {width}x{height} = {width * height / 1e6:.0f} megapixels; the limit is "
            f"{config.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels (decompression-bomb guard); resize it first"
        )
    # Checked on the header, before decoding: a thin strip within the pixel limit costs
    # little to decode but gigabytes to resize (the resize's intermediate is the target
    # width times the source height).
    ratio = max(width, height) / min(width, height)
    if ratio > config.MAX_ASPECT_RATIO:
        raise ImageError(
            f"image is {width}x{height} pixels, an aspect ratio of {ratio:,.0f}:1; the limit is "
            f"{config.MAX_ASPECT_RATIO}:1 (a strip that thin is not a photo); crop it first"
        )


def _oriented(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the picture
        return img


def _sniff(data: bytes) -> str:
    head = data[:512].lstrip().lower()
    if head.startswith(b"<?xml") or b"<svg" in head:
        return "looks like SVG, a vector format"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif", b"ftyphevc"):
        return "looks like HEIC/AVIF"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in data[:256]):
        return "looks like text"
    return "unknown format"


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB. Transparency is composited on white.

    Conversions work in 8 bits or in place (no float64 copies), so a large
    16-bit or RGBA image costs little more than its decoded pixels and the
    RGB result.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return Image.fromarray(_to_uint8(img, mode), "L").convert("RGB")
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("LA", "PA", "La", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        rgb = Image.new("RGB", img.size, (255, 255, 255))
        rgb.paste(img, mask=img.getchannel("A"))  # "over" a white background, without an RGBA copy
        return rgb
    return img.convert("RGB")


_UINT16_TO_UINT8 = np.rint(np.arange(65536) / 257.0).astype(np.uint8)  # 0..65535 -> 0..255, rounded


def _to_uint8(img: Image.Image, mode: str) -> np.ndarray:
    """A 16-bit, 32-bit integer or float grey image as uint8, scaled like x / 257 when beyond 0..255."""
    if mode.startswith("I;16"):
        return _UINT16_TO_UINT8[np.asarray(img).astype(np.uint16, copy=False)]
    arr = np.array(img)  # int32 or float32: one copy, then worked on in place
    if arr.max(initial=0) > 255:
        if mode == "F":
            np.divide(arr, 257.0, out=arr)
        else:
            np.clip(arr, 0, 65535, out=arr)
            return _UINT16_TO_UINT8[arr]
    if mode == "F":
        np.rint(arr, out=arr)
    np.clip(arr, 0, 255, out=arr)
    return arr.astype(np.uint8)


def resize(img: Image.Image, image_size: int) -> Image.Image:
    """Squash to image_size x image_size, as the notebook did (no crop)."""
    if img.size == (image_size, image_size):
        return img
    return img.resize((image_size, image_size), RESIZE_METHOD)


def load_array(source: ImageSource, image_size: int = config.IMAGE_SIZE) -> np.ndarray:
    """Return the model input for one image: uint8 RGB array (image_size, image_size, 3).

    Args:
        source: a path, raw bytes, a binary file object or a PIL image.
        image_size: the model's input size in pixels.

    Raises:
        ImageError: the file is missing, empty, corrupt, unsupported or too large.
    """
    if not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"image_size must be an integer >= 8, got {image_size!r}")
    # No JPEG draft (DCT-domain downscaling): a PIL image arrives decoded at full size, so a draft
    # would give a path or bytes other pixels than the same photo as a PIL image.
    img = open_image(source)
    return np.asarray(resize(to_rgb(img), image_size), dtype=np.uint8)


def load_display_image(source: ImageSource, max_side: int = 512) -> Image.Image:
    """An RGB thumbnail for display (orientation applied); not model input."""
    img = to_rgb(open_image(source))
    img.thumbnail((max_side, max_side))
    return img


PAD_COLOUR = (244, 246, 250)  # the app theme's secondary background


def display_square(source: ImageSource, side: int, pad: bool = False) -> Image.Image:
    """A `side` x `side` thumbnail for grids whose rows must have one height; not model input.

    Args:
        source: the photo.
        side: the square's side in pixels.
        pad: keep the whole photo, padded with the theme's background (a mistake must be seen whole),
            instead of cropping it to its centre.
    """
    from PIL import ImageOps

    img = load_display_image(source, 2 * side)
    return ImageOps.pad(img, (side, side), color=PAD_COLOUR) if pad else ImageOps.fit(img, (side, side))

