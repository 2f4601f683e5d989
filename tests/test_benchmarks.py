"""Smoke tests: both benchmarks run with --quick on tiny generated data and print their report.

They check the output's shape only; speed targets live in the benchmarks, never in tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.fixtures import REPO, make_class_folders

pytestmark = pytest.mark.slow  # TensorFlow models or trainings; `pytest -m "not slow"` leaves them out

SPEEDUP = re.compile(r"^speedup \d+\.\d\d$", re.MULTILINE)


def _run(script: str, *args: str) -> str:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_bench_train_quick_prints_the_table_machine_and_speedup(tmp_path):
    data = make_class_folders(tmp_path / "data", n=10)
    out = _run("bench_train.py", "--data", str(data), "--quick")
    assert "TensorFlow" in out and "cores" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith(("notebook ", "catdog "))}
    assert set(rows) == {"notebook", "catdog"}
    assert all(len(values) == 5 and float(values[0]) > 0 for values in rows.values())
    assert "catdog one-off decode" in out and "for 20 images" in out
    assert SPEEDUP.search(out)
    assert out.strip().splitlines()[-1].startswith("speedup ")


def test_bench_predict_quick_prints_latency_throughput_and_speedup(tmp_path):
    make_class_folders(tmp_path / "photos", n=3)
    out = _run("bench_predict.py", "--quick", "--images", str(tmp_path / "photos"))
    assert "TensorFlow" in out and "cores" in out
    assert "cpu flags:" in out
    for path in ("model.predict", "Predictor tensorflow", "Predictor onnxruntime"):
        line = next(line for line in out.splitlines() if line.startswith(path))
        median, p95, throughput = (float(v) for v in line[len(path):].split())
        assert 0 < median <= p95 and throughput > 0
    assert "single image: 6 images" in out
    assert SPEEDUP.search(out)
    assert out.strip().splitlines()[-1].startswith("speedup ")
