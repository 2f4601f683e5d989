"""The last tracebacks: a zip entry flagged UTF-8 with invalid bytes, and every environment variable catdog reads set to junk."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import zipfile
from contextlib import closing

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from catdog import cli, config, jobs, runs
from catdog.archive import ArchiveError, UnpackBudget, extract_zip
from catdog.errors import CatdogError, SettingError
from tests.fixtures import REPO, image_bytes, make_class_folders, tiny_config

TIMEOUT = 60


def _zip_with_invalid_utf8_name() -> bytes:
    """A zip whose entry is flagged UTF-8 (bit 11) but whose name bytes are not UTF-8."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("cats/c1.jpg", image_bytes(seed=1))
        zf.writestr("cats/\u00e9\u00e9.jpg", image_bytes(seed=2))  # non-ASCII: zipfile sets the UTF-8 flag
    return buf.getvalue().replace("\u00e9\u00e9".encode(), b"\xff\xfe\xc3\x28")


def test_a_zip_entry_flagged_utf8_with_invalid_bytes_is_refused_clearly(tmp_path, stats):
    data = _zip_with_invalid_utf8_name()
    source = tmp_path / "bad.zip"
    source.write_bytes(data)
    stats.fault()
    for given in (source, io.BytesIO(data)):
        with pytest.raises(ArchiveError, match="not valid UTF-8"):
            extract_zip(given, tmp_path / "ds")
        assert not (tmp_path / "ds").exists() and not list(tmp_path.glob(".tmp-*"))
    stats.input(ok=False)


def _data_page() -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT).run()
    return at.switch_page("pages/data.py").run()


def test_the_data_page_refuses_a_zip_with_an_invalid_utf8_name_in_words(home, stats):
    at = _data_page()
    at.file_uploader(key="data_zip").set_value([("bad.zip", _zip_with_invalid_utf8_name(), "application/zip")]).run()
    at.button(key="import_zip").click().run()
    stats.fault()
    assert not at.exception, at.exception
    assert any("UTF" in e.value for e in at.error), [e.value for e in at.error]


# --- environment variables -----------------------------------------------------------

# Every variable catdog reads a number or a choice from, with a value it cannot use.
BAD_SETTINGS = {
    "CATDOG_MAX_PREDICT_FILES": "abc",
    "CATDOG_SESSION_UNPACK_GB": "abc",
    "CATDOG_CLUSTER_TIMEOUT": "abc",
    "CATDOG_ALLOW_LOCAL_FOLDERS": "maybe",
    "CATDOG_PREDICT_BACKEND": "abc",
    "CATDOG_PREDICT_PRECISION": "abc",
}


@pytest.mark.parametrize("name", sorted(BAD_SETTINGS))
def test_importing_catdog_never_reads_a_setting(name, stats):
    """A bad value must not break `import`: every command, page and test would fail with a traceback before it starts."""
    env = {**os.environ, name: BAD_SETTINGS[name], "PYTHONPATH": str(REPO)}
    modules = "catdog.cli, catdog.config, catdog.archive, catdog.sources, catdog.jobs, catdog.distribute, catdog.hardware"
    proc = subprocess.run([sys.executable, "-c", f"import {modules}"], env=env, capture_output=True, text=True, timeout=120)
    stats.fault()
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]


@pytest.mark.parametrize("raw", ["abc", "0", "-5", "2.5", "nan", "inf"])
def test_a_bad_predict_file_limit_names_the_variable_and_the_value(monkeypatch, raw, stats):
    monkeypatch.setenv("CATDOG_MAX_PREDICT_FILES", raw)
    with pytest.raises(SettingError, match=f"CATDOG_MAX_PREDICT_FILES={raw!r}"):
        config.max_predict_files()
    stats.input(ok=False)
    monkeypatch.setenv("CATDOG_MAX_PREDICT_FILES", " 7 ")
    assert config.max_predict_files() == 7
    monkeypatch.delenv("CATDOG_MAX_PREDICT_FILES")
    assert config.max_predict_files() == config.DEFAULT_MAX_PREDICT_FILES


@pytest.mark.parametrize("raw", ["abc", "0", "-1", "nan", "inf"])
def test_a_bad_session_unpack_limit_names_the_variable_and_the_value(monkeypatch, raw, stats):
    monkeypatch.setenv("CATDOG_SESSION_UNPACK_GB", raw)
    with pytest.raises(SettingError, match=f"CATDOG_SESSION_UNPACK_GB={raw!r}"):
        UnpackBudget()
    stats.input(ok=False)
    monkeypatch.setenv("CATDOG_SESSION_UNPACK_GB", "0.5")
    assert UnpackBudget().limit == 512 * 1024**2


def test_the_predict_page_says_which_setting_is_wrong(home, monkeypatch, stats):
    monkeypatch.setenv("CATDOG_MAX_PREDICT_FILES", "abc")
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT).run()
    at = at.switch_page("pages/predict.py").run()
    at.file_uploader(key="predict_files").set_value([("p.jpg", image_bytes(seed=3), "image/jpeg")]).run()
    stats.fault()
    assert not at.exception, at.exception
    assert any("CATDOG&#95;MAX&#95;PREDICT&#95;FILES" in e.value for e in at.error), [e.value for e in at.error]


@pytest.mark.parametrize("name", ["CATDOG_SESSION_UNPACK_GB", "CATDOG_ALLOW_LOCAL_FOLDERS"])
def test_the_data_page_says_which_setting_is_wrong(home, monkeypatch, name, stats):
    monkeypatch.setenv(name, BAD_SETTINGS[name])
    at = _data_page()
    stats.fault()
    assert not at.exception, at.exception
    shown = name.replace("_", "&#95;")
    assert any(shown in e.value for e in at.error), [e.value for e in at.error]


@pytest.mark.parametrize("name", ["CATDOG_PREDICT_BACKEND", "CATDOG_PREDICT_PRECISION"])
def test_a_bad_inference_setting_is_a_clear_message_on_the_cli_and_the_predict_page(home, monkeypatch, name, stats):
    monkeypatch.setenv(name, BAD_SETTINGS[name])
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["predict", str(REPO / "assets" / "samples" / "cat-1.jpg")], out=out, err=err)
    assert code == 2 and f"{name}='abc'" in err.getvalue(), err.getvalue()
    st.cache_resource.clear()  # the page's model cache is keyed by the model file, not by the environment
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT).run()
    at = at.switch_page("pages/predict.py").run()
    stats.fault(2)
    assert not at.exception, at.exception
    shown = name.replace("_", "&#95;")
    assert any(shown in e.value for e in at.error), [e.value for e in at.error]


def _free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_bad_cluster_timeout_is_refused_before_a_run_folder_exists(tmp_path, monkeypatch, stats):
    data = make_class_folders(tmp_path / "data", n=4, size=(24, 24))
    workers = [f"localhost:{_free_port()}", f"localhost:{_free_port()}"]
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": 0}}))
    monkeypatch.setenv("CATDOG_CLUSTER_TIMEOUT", "abc")
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["train", "--data", str(data), "--model", "seed", "--image-size", "32", "--epochs", "1", "--batch-size", "4",
                     "--strategy", "multiworker", "--runs-dir", str(tmp_path / "runs"), "--run-id", "refused",
                     "--precision", "float32", "--no-lock"], out=out, err=err)
    stats.fault()
    made = sorted(p.name for p in (tmp_path / "runs").iterdir()) if (tmp_path / "runs").exists() else []
    assert made == [], made
    assert code == 2 and "CATDOG_CLUSTER_TIMEOUT='abc'" in err.getvalue() and "Traceback" not in err.getvalue(), err.getvalue()
    # The Train page's way in (a detached child) refuses it the same way, before making the folder.
    with pytest.raises(CatdogError, match="CATDOG_CLUSTER_TIMEOUT='abc'"):
        jobs.start_training(tiny_config(data), runs_dir=tmp_path / "page-runs")
    assert runs.list_runs(tmp_path / "page-runs") == [] and runs.read_lock(tmp_path / "page-runs") is None
