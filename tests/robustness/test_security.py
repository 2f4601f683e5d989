"""Security for an app that may be served to others: secrets, upload limits, archives, folder access."""

from __future__ import annotations

import io
import secrets
import time
from pathlib import Path

import pytest
import tomllib

from catdog import jobs, preprocess, runs
from catdog.errors import ImageError
from catdog.training import TrainConfig
from tests.fixtures import REPO


def files_containing(root: Path, needle: str) -> list[str]:
    """Every file under root whose bytes contain needle."""
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and needle.encode() in path.read_bytes():
            hits.append(str(path.relative_to(root)))
    return hits


@pytest.fixture
def kaggle_canary(monkeypatch) -> str:
    """Kaggle credentials in the environment, as a user would set them; returns the key."""
    key = "canary" + secrets.token_hex(16)
    monkeypatch.setenv("KAGGLE_USERNAME", "canary-user-" + secrets.token_hex(4))
    monkeypatch.setenv("KAGGLE_KEY", key)
    return key


def wait_for(run, runs_dir, timeout: float = 240) -> str:
    deadline = time.time() + timeout
    while (jobs.job_status(run, runs_dir).active or runs.read_lock(runs_dir)) and time.time() < deadline:
        time.sleep(0.5)  # until the child has exited and freed the lock
    return jobs.job_status(run, runs_dir).state


@pytest.mark.slow
def test_kaggle_key_never_reaches_run_folders_logs_or_errors(tmp_path, tiny_dataset, kaggle_canary, stats):
    runs_dir = tmp_path / "runs"
    cfg = TrainConfig(data=str(tiny_dataset), model="compact", epochs=1, batch_size=4, image_size=32, val_split=0.25)
    run = jobs.start_training(cfg, runs_dir=runs_dir, run_id="with-key")  # the child inherits the environment
    assert wait_for(run, runs_dir) == "finished", jobs.log_tail(run)
    # A training that fails writes its error and traceback to status.json and train.log: those must be clean too.
    unreadable = tmp_path / "unreadable"
    for name in ("cats", "dogs"):
        (unreadable / name).mkdir(parents=True)
        (unreadable / name / "1.jpg").write_bytes(b"not a photo")
    failed = jobs.start_training(
        TrainConfig(data=str(unreadable), epochs=1, image_size=32, val_split=0.5), runs_dir=runs_dir, run_id="fails"
    )
    assert wait_for(failed, runs_dir) == "failed"
    assert failed.status().get("traceback") or failed.status().get("error")
    assert run.log_path.stat().st_size > 0 and failed.log_path.stat().st_size > 0
    hits = files_containing(runs_dir, kaggle_canary)
    stats.input(not hits)
    assert hits == []


def test_uploaded_bytes_over_the_file_limit_are_refused_before_decoding(monkeypatch, tmp_path, stats):
    monkeypatch.setattr(preprocess, "MAX_FILE_BYTES", 1000)
    for source in (b"\xff" * 1001, io.BytesIO(b"\xff" * 1001), bytearray(1001)):
        with pytest.raises(ImageError, match=r"the limit is 0 MB"):
            preprocess.load_array(source, 32)
        stats.input(False)
    big_file = tmp_path / "big.jpg"
    with open(big_file, "wb") as fh:  # sparse: the size check must not read it
        fh.truncate(10**12)
    monkeypatch.setattr(preprocess, "MAX_FILE_BYTES", 200 * 1024 * 1024)
    with pytest.raises(ImageError, match=r"file is 1000000 MB; the limit is 210 MB"):
        preprocess.load_array(big_file, 32)
    stats.input(False)


def test_the_servers_upload_limit_matches_what_catdog_will_decode():
    settings = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    max_upload_mb = settings["server"]["maxUploadSize"]  # Streamlit refuses bigger files itself
    assert 0 < max_upload_mb * 1024 * 1024 <= preprocess.MAX_FILE_BYTES
    assert settings["client"]["showErrorDetails"] in ("none", False)  # no tracebacks (paths, settings) shown to visitors
