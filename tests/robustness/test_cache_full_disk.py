"""A full disk while writing the decode cache: a clear message, no SIGBUS, no temp file left."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from catdog import data, runs
from catdog.errors import RunError
from catdog.training import TrainConfig, train
from tests.fixtures import REPO


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_cache_disk_gives_the_full_disk_message_and_leaves_no_temp_file(tmp_path, tiny_dataset, monkeypatch, stats):
    cache = tmp_path / "cache"
    monkeypatch.setenv("CATDOG_CACHE_DIR", str(cache))
    monkeypatch.setattr(os, "posix_fallocate", _no_space)
    cfg = TrainConfig(
        data=str(tiny_dataset), model="seed", epochs=1, batch_size=4, image_size=32, val_split=0.25, precision="float32", cache="disk"
    )
    with pytest.raises(RunError, match=r"disk is full.*decode cache.*CATDOG_CACHE_DIR.*--cache memory") as info:
        train(cfg, runs_dir=tmp_path / "runs", run_id="r", verbose=0, stream=io.StringIO(), lock=False, handle_signals=False)
    stats.fault()
    assert str(cache) in str(info.value) and "--resume" not in str(info.value)  # nothing to resume: no checkpoint
    assert runs.Run(tmp_path / "runs" / "r").status()["state"] == "failed"
    assert list(cache.iterdir()) == []


def test_a_file_system_without_fallocate_reserves_the_cache_with_plain_writes(tmp_path, tiny_dataset, monkeypatch, stats):
    monkeypatch.setenv("CATDOG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(os, "posix_fallocate", lambda *a: (_ for _ in ()).throw(OSError(errno.EOPNOTSUPP, "not supported")))
    images = data.discover(tiny_dataset).train
    decoded = data.decode_images(images, 32, cache="disk")
    stats.fault()
    assert len(decoded) == len(images) and decoded.cache_path is not None and int(decoded.images[0].max()) > 0


@pytest.fixture
def tiny_tmpfs(tmp_path):
    target = tmp_path / "small"
    target.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(target)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode}); the monkeypatched test covers the logic")
    yield target
    subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.mark.slow
def test_catdog_train_with_a_disk_cache_on_a_full_tmpfs_fails_with_a_message_not_sigbus(tmp_path, tiny_dataset, tiny_tmpfs, stats):
    env = dict(os.environ, CATDOG_CACHE_DIR=str(tiny_tmpfs), TF_CPP_MIN_LOG_LEVEL="2")
    # 18 training images at 256x256 need 3.5 MB of cache: more than the 2 MB tmpfs holds.
    cmd = [
        sys.executable,
        "-m",
        "catdog",
        "train",
        "--data",
        str(tiny_dataset),
        "--model",
        "seed",
        "--epochs",
        "1",
        "--image-size",
        "256",
        "--cache",
        "disk",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--run-id",
        "r",
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    stats.fault()
    assert proc.returncode == 2, f"exit {proc.returncode}: {proc.stderr[-1500:]}"
    assert "disk is full" in proc.stderr and "decode cache" in proc.stderr
    assert list(Path(tiny_tmpfs).iterdir()) == []
