"""The hostile corpus through every path: load_array, Predictor, the CLI, dataset loading, the Predict page.

Each path must give the same answer for each file: a correct result (pixels
checked) or a clear per-file error, and never let one bad file stop the rest.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from catdog.data import ImageSet, decode_images
from catdog.errors import ImageError
from catdog.predict import Predictor
from catdog.preprocess import load_array
from tests.fixtures import REPO
from tests.robustness.corpus import SIZE, Case

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the corrupt EXIF block


def judge(case: Case, outcome: np.ndarray | Exception, stats, path: str) -> str | None:
    """None if `outcome` is what `case` must give on `path`, else what went wrong."""
    problem = None
    if isinstance(outcome, ImageError):
        if case.ok:
            problem = f"refused a good file: {outcome}"
        elif not re.search(case.error, str(outcome)):
            problem = f"unclear error {str(outcome)!r}, expected /{case.error}/"
    elif isinstance(outcome, BaseException):
        problem = f"crashed with {type(outcome).__name__}: {outcome}"
    elif not case.ok:
        problem = "accepted a file that must be refused"
    elif case.check is not None:
        try:
            case.check(outcome)
        except AssertionError as exc:
            problem = f"wrong pixels: {exc}"
    stats.input(case.ok if problem is None else False)
    if problem:
        stats.error(f"{path}: {case.name}: {problem}")
        return f"{case.name}: {problem}"
    return None


def test_load_array_gives_correct_pixels_or_a_clear_error_for_every_hostile_file(hostile_corpus, hostile_folder, stats):
    problems = []
    for case in hostile_corpus:
        for source in (hostile_folder / case.name, case.data, io.BytesIO(case.data)):
            try:
                outcome = load_array(source, SIZE)
            except Exception as exc:  # noqa: BLE001 - judged below
                outcome = exc
            problems.append(judge(case, outcome, stats, "load_array"))
    assert [p for p in problems if p] == []


@pytest.fixture(scope="module")
def predictor(tiny_run) -> Predictor:
    return Predictor.load(tiny_run.path)


def test_predictor_classifies_good_files_and_reports_bad_ones_in_one_batch(hostile_corpus, predictor, stats):
    results = predictor.predict([c.data for c in hostile_corpus], [c.name for c in hostile_corpus])
    assert [r.file for r in results] == [c.name for c in hostile_corpus]  # order kept, nothing dropped
    problems = []
    for case, result in zip(hostile_corpus, results):
        outcome = ImageError(result.error) if result.error else None
        if outcome is None:
            expected = float(predictor.predict_arrays(load_array(case.data, predictor.image_size))[0])
            if result.p_dog != pytest.approx(expected, abs=1e-6) or result.label not in predictor.class_names:
                outcome = AssertionError(f"p_dog {result.p_dog} != {expected} from load_array")
            else:
                outcome = load_array(case.data, SIZE)
        problems.append(judge(case, outcome, stats, "Predictor.predict"))
    assert [p for p in problems if p] == []


@pytest.mark.slow
def test_cli_predict_json_gives_one_line_per_file_matching_the_predictor(
    hostile_corpus, hostile_folder, predictor, tiny_run, tmp_path, stats
):
    files = [str(hostile_folder / c.name) for c in hostile_corpus]
    fifo = tmp_path / "a-pipe.jpg"
    os.mkfifo(fifo)  # reading it would block forever
    odd_paths = {str(tmp_path / "missing.jpg"): "does not exist", str(tmp_path): "is not a file", "/dev/zero": "is not a file",
                 str(fifo): "is not a file"}
    proc = subprocess.run(
        [sys.executable, "-m", "catdog", "predict", "--json", "--model", str(tiny_run.path), *files, *odd_paths],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]  # some files failed, and that is reported in the exit status
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert [r["file"] for r in rows] == files + list(odd_paths)
    for row in rows[len(files):]:
        assert odd_paths[row["file"]] in row.get("error", ""), row
    stats.input(False, n=len(odd_paths))
    rows = rows[: len(files)]
    in_process = {r.file: r for r in predictor.predict(files)}
    problems = []
    for case, row in zip(hostile_corpus, rows):
        if "error" in row:
            outcome = ImageError(row["error"])
        elif row["p_dog"] != pytest.approx(in_process[row["file"]].p_dog, abs=1e-5):
            outcome = AssertionError(f"CLI p_dog {row['p_dog']} differs from in-process {in_process[row['file']].p_dog}")
        else:
            outcome = load_array(case.data, SIZE)
        problems.append(judge(case, outcome, stats, "catdog predict --json"))
    assert [p for p in problems if p] == []


def test_dataset_decoding_keeps_good_files_and_lists_each_bad_one_with_its_reason(hostile_corpus, hostile_folder, stats):
    paths = [hostile_folder / c.name for c in hostile_corpus]
    decoded = decode_images(ImageSet(paths, [i % 2 for i in range(len(paths))]), SIZE, cache="memory")
    kept = {p.name: i for i, p in enumerate(decoded.paths)}
    reasons = {p.name: r for p, r in decoded.skipped}
    assert len(kept) + len(reasons) == len(paths)  # every file is either decoded or listed: none vanishes
    problems = []
    for i, case in enumerate(hostile_corpus):
        if case.name in kept:
            row = kept[case.name]
            assert decoded.labels[row] == i % 2
            outcome = np.asarray(decoded.images[row])
        else:
            outcome = ImageError(reasons[case.name])
        problems.append(judge(case, outcome, stats, "data.decode_images"))
    assert [p for p in problems if p] == []


@pytest.mark.slow
def test_predict_page_shows_a_card_for_every_file_and_no_traceback(hostile_corpus, tiny_run, tmp_path, monkeypatch, stats):
    from streamlit.testing.v1 import AppTest

    from catdog import config, predict

    monkeypatch.setenv("CATDOG_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(config, "assets_dir", lambda: tmp_path / "assets")
    predict.set_active_model(tiny_run.path)
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=180).run()
    at = at.switch_page("pages/predict.py").run()
    at.file_uploader(key="predict_files").set_value([(c.name, c.data, "application/octet-stream") for c in hostile_corpus]).run()
    assert not at.exception
    n_ok = sum(c.ok for c in hostile_corpus)
    assert f"{n_ok} of {len(hostile_corpus)} classified" in at.subheader[0].value
    table = at.dataframe[0].value
    assert list(table["file"]) == [c.name for c in hostile_corpus]
    problems = []
    for case, (_, row) in zip(hostile_corpus, table.iterrows()):
        outcome = ImageError(row["error"]) if row["error"] else load_array(case.data, SIZE)
        problems.append(judge(case, outcome, stats, "Predict page"))
    assert [p for p in problems if p] == []
    assert len(at.error) == len(hostile_corpus) - n_ok


@pytest.fixture(scope="module")
def mixed_dataset(tmp_path_factory, hostile_corpus, tiny_dataset):
    """The tiny cats/dogs photos plus the whole corpus, split between the two classes."""
    import shutil

    root = tmp_path_factory.mktemp("mixed") / "data"
    shutil.copytree(tiny_dataset, root)
    for i, case in enumerate(hostile_corpus):
        (root / ("cats", "dogs")[i % 2] / case.name).write_bytes(case.data)
    return root


@pytest.mark.slow
def test_training_on_a_folder_with_hostile_files_skips_exactly_the_bad_ones(mixed_dataset, hostile_corpus, tmp_path, stats):
    from catdog.training import TrainConfig, train

    cfg = TrainConfig(data=str(mixed_dataset), model="compact", epochs=1, batch_size=8, image_size=SIZE, val_split=0.25,
                      precision="float32")
    log = io.StringIO()
    run = train(cfg, runs_dir=tmp_path, run_id="mixed", verbose=0, stream=log, lock=False, handle_signals=False)
    assert run.status()["state"] == "finished"
    skipped = {Path(p).name: reason for p, reason in run.config()["skipped"]}
    bad = {c.name: c for c in hostile_corpus if not c.ok}
    assert set(skipped) == set(bad)
    problems = [judge(bad[name], ImageError(reason), stats, "train (dataset)") for name, reason in skipped.items()]
    assert [p for p in problems if p] == []
    assert all(f"skipped {Path(p)}" in log.getvalue() for p, _ in run.config()["skipped"])  # the user is told
    cfg_n = run.config()
    assert cfg_n["n_train"] + cfg_n["n_validation"] + cfg_n["n_calibration"] == 24 + sum(c.ok for c in hostile_corpus)


@pytest.mark.slow
def test_cli_evaluate_on_a_folder_with_hostile_files_lists_the_skipped_ones(mixed_dataset, hostile_corpus, tiny_run):
    proc = subprocess.run(
        [sys.executable, "-m", "catdog", "evaluate", "--model", str(tiny_run.path), "--data", str(mixed_dataset), "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sorted(Path(s["file"]).name for s in summary["skipped"]) == sorted(c.name for c in hostile_corpus if not c.ok)
    assert summary["n"] == 24 + sum(c.ok for c in hostile_corpus)
