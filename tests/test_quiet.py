"""No foreign log lines: TensorFlow's start-up chatter stays off the terminal, a real import error does not."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from catdog.quiet import stderr_fd_captured
from tests.fixtures import REPO, write_image


def test_what_a_block_writes_to_fd_2_is_dropped_when_it_succeeds(capfd):
    with stderr_fd_captured():
        os.write(2, b"I0000 cudart_stub.cc:31] Could not find cuda drivers\n")
    assert capfd.readouterr().err == ""


def test_and_written_out_when_it_fails(capfd):
    with pytest.raises(ImportError):
        with stderr_fd_captured():
            os.write(2, b"the real reason\n")
            raise ImportError("boom")
    assert "the real reason" in capfd.readouterr().err


def _cli(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    """`python -m catdog ...` in a fresh interpreter, with no log level set by the caller."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "catdog", *args], capture_output=True, text=True, timeout=600, env=env, cwd=cwd)


@pytest.mark.slow
def test_predict_explain_and_export_print_no_tensorflow_line(tmp_path, tiny_run):
    photo = write_image(tmp_path / "cat.jpg")
    explained = _cli("predict", str(photo), "--model", str(tiny_run.path), "--explain", str(tmp_path / "why"))
    assert explained.returncode == 0 and explained.stderr == "", explained.stderr
    assert (tmp_path / "why" / "cat.gradcam.png").exists()
    exported = _cli("export", str(tiny_run.path), "--format", "keras", "--out", str(tmp_path / "m.keras"))
    assert exported.returncode == 0 and exported.stderr == "", exported.stderr


@pytest.mark.slow
def test_a_failing_tensorflow_import_still_shows_why(tmp_path):
    (tmp_path / "tensorflow").mkdir()  # a broken tensorflow package first on the path
    broken = "import os\nos.write(2, b'broken install: libtensorflow missing\\n')\nraise ImportError('no tf')\n"
    (tmp_path / "tensorflow" / "__init__.py").write_text(broken)
    code = "from catdog.quiet import quiet_tensorflow; quiet_tensorflow(); import tensorflow"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode != 0 and "broken install: libtensorflow missing" in proc.stderr and "no tf" in proc.stderr
