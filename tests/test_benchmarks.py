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


def test_compare_models_scores_every_model_on_the_same_copies_and_non_pets(tmp_path, run_with_check, tiny_run):
    import json

    run_dir, photos, negatives, _ = run_with_check
    out = _run("compare_models.py", "--model", f"checked={run_dir}", "--model", f"plain={tiny_run.path}",
               "--data", str(photos), "--not-pets", str(negatives), "--limit", "8", "--json", str(tmp_path / "r.json"))
    assert "CPU:" in out and "16 photos" in out
    summary = json.loads((tmp_path / "r.json").read_text())
    assert json.loads(out.strip().splitlines()[-1]) == summary
    assert summary["n"] == 16 and set(summary["models"]) == {"checked", "plain"}
    assert len(summary["copies"]) == 9 and "close crop 50%" in summary["copies"]
    for copy in summary["copies"].values():  # both models on every copy
        assert set(copy) == {"checked", "plain"} and all(0.0 <= r["accuracy"] <= 1.0 for r in copy.values())
        assert copy["plain"]["wrongly_flagged"] is None and 0.0 <= copy["checked"]["wrongly_flagged"] <= 1.0
    # The non-pet folder is measured for a model with a check; one without says so instead of failing silently.
    assert summary["not_pets"][str(negatives)]["checked"]["n"] == 6
    assert summary["not_pets"][str(negatives)]["plain"]["error"].startswith(str(tiny_run.path))
