"""Smoke tests: both benchmarks run with --quick on tiny generated data and print their report.

They check the output's shape only; speed targets live in the benchmarks, never in tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.fixtures import REPO, make_class_folders

pytestmark = pytest.mark.slow  # TensorFlow models or trainings; `pytest -m "not slow"` leaves them out

RATIO = r"\d+\.\d\dx"


def _run(script: str, *args: str) -> str:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _table_rows(out: str, names: tuple[str, ...]) -> dict[str, list[str]]:
    return {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()[:1] and line.split()[0] in names}


def test_bench_train_quick_prints_the_table_machine_and_a_lumped_figure_named_as_such(tmp_path):
    data = make_class_folders(tmp_path / "data", n=10)
    out = _run("bench_train.py", "--data", str(data), "--quick")
    assert "TensorFlow" in out and "cores" in out and "cpu family" in out
    rows = _table_rows(out, ("notebook", "catdog"))
    assert set(rows) == {"notebook", "catdog"}
    assert all(len(values) == 5 and float(values[0]) > 0 for values in rows.values())
    assert "catdog one-off decode" in out and "for 20 images" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("catdog's default against the notebook, lumped") and "--separate splits them" in last
    assert re.search(RATIO, last) and "speedup" not in out


def test_bench_train_separate_gives_each_gain_against_the_pipeline_that_differs_in_that_one_thing(tmp_path):
    data = make_class_folders(tmp_path / "data", n=10)
    out = _run("bench_train.py", "--data", str(data), "--quick", "--separate", "--out", str(tmp_path / "r.json"))
    names = ("notebook", "float32", "float32-fused", "bfloat16", "bfloat16-fused")
    rows = _table_rows(out, names)
    assert set(rows) == set(names) and all(float(values[0]) > 0 for values in rows.values())
    assert "all with catdog's process settings" in out
    for gain in (
        "decode-once input pipeline (both float32, Keras BatchNorm)",
        "fused BatchNorm in float32",
        "fused BatchNorm in mixed_bfloat16",
        "mixed_bfloat16 against float32, Keras BatchNorm",
        "mixed_bfloat16 against float32, fused BatchNorm",
    ):
        assert re.search(rf"^  {re.escape(gain)}: {RATIO} \(", out, re.MULTILINE), gain
    assert "speedup" not in out and "lumped" not in out
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["command"].startswith("python benchmarks/bench_train.py ") and "cpu family" in record["machine"]
    assert set(record["pipelines"]) == set(names) and len(record["gains"]) == 5
    assert record["gains"]["fused BatchNorm in float32"]["peer"] == "float32"


def test_bench_predict_quick_prints_each_gain_against_its_peer_and_model_predict_as_an_overhead(tmp_path):
    make_class_folders(tmp_path / "photos", n=3)
    out = _run("bench_predict.py", "--quick", "--images", str(tmp_path / "photos"))
    assert "TensorFlow" in out and "cores" in out
    assert "cpu flags:" in out
    for path in ("model.predict", "Predictor tensorflow", "Predictor onnxruntime"):
        line = next(line for line in out.splitlines() if line.startswith(path))
        median, p95, throughput = (float(v) for v in line[len(path):].split())
        assert 0 < median <= p95 and throughput > 0
    assert "single image: 6 images" in out and "cpu family" in out and "sha256 " in out
    assert re.search(rf"ONNX Runtime against TensorFlow's compiled tf.function .*: single image {RATIO} .*batch of 8 {RATIO}", out)
    assert re.search(r"^model.predict's per-call overhead .*: [+-]\d+\.\d ms per call", out, re.MULTILINE)
    assert "speedup" not in out


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
