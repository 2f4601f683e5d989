from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import pytest

from catdog.cli import main
from tests.fixtures import CAT_COLOUR, DOG_COLOUR, REPO, make_class_folders, write_image


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_models_lists_presets_with_parameter_counts():
    code, out, _ = run_cli("models")
    assert code == 0
    assert "seed" in out and "14,848,193" in out and "256x256" in out


@pytest.mark.slow
def test_recorded_parameter_counts_match_the_built_presets():
    from catdog.cli import PRESET_PARAMS
    from catdog.models import count_params

    assert {name: count_params(name) for name in PRESET_PARAMS} == PRESET_PARAMS


@pytest.mark.parametrize("command", ["models", "runs"])
def test_listing_commands_never_import_tensorflow(command, tmp_path):
    code = (
        "import sys, io; from catdog.cli import main; "
        f"rc = main([{command!r}], out=io.StringIO()); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow imported'; sys.exit(rc)"
    )
    env = {**__import__("os").environ, "CATDOG_HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "tensorflow" not in proc.stderr.lower() and "cuda" not in proc.stderr.lower()


def test_runs_prints_where_the_runs_folder_is(tmp_path, monkeypatch):
    monkeypatch.setenv("CATDOG_HOME", str(tmp_path / "h"))
    code, out, _ = run_cli("runs")
    assert code == 0 and str(tmp_path / "h" / "runs") in out


def test_predict_json_has_one_line_per_file_and_fails_on_a_bad_file(tmp_path, tiny_run):
    cat = write_image(tmp_path / "cat.jpg", colour=CAT_COLOUR, seed=5)
    dog = write_image(tmp_path / "dog.png", colour=DOG_COLOUR, seed=6)
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    code, out, _ = run_cli("predict", cat, bad, dog, "--model", tiny_run.path, "--json")
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert code == 1
    assert [row["file"] for row in lines] == [str(cat), str(bad), str(dog)]
    assert lines[0]["label"] in ("cat", "dog") and 0.0 <= lines[0]["p_dog"] <= 1.0
    assert set(lines[0]) >= {"file", "label", "p_dog"}
    assert set(lines[1]) == {"file", "error"} and "not a supported image" in lines[1]["error"]
    assert lines[2]["label"] in ("cat", "dog")


def test_predict_all_good_exits_zero(tmp_path, tiny_run):
    img = write_image(tmp_path / "a.jpg")
    code, out, _ = run_cli("predict", img, "--model", tiny_run.model_path)
    assert code == 0 and str(img) in out


def test_predict_without_any_model_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setattr("catdog.model_files.default_model", lambda: None)
    code, _, err = run_cli("predict", write_image(tmp_path / "a.jpg"))
    assert code == 2 and "catdog train" in err


def test_evaluate_json_prints_only_the_summary_document(tmp_path, tiny_run):
    data = make_class_folders(tmp_path / "val", n=3)
    (data / "cats" / "junk.jpg").write_bytes(b"junk")
    code, out, _ = run_cli("evaluate", "--model", tiny_run.path, "--data", data, "--json")
    assert code == 0
    summary = json.loads(out)  # the whole of stdout parses: `catdog evaluate --json | jq .accuracy` works
    assert summary["n"] == 6
    assert 0.0 <= summary["accuracy"] <= 1.0
    assert sum(map(sum, summary["confusion"])) == 6
    assert summary["skipped"][0]["file"].endswith("junk.jpg")


def test_evaluate_prints_a_readable_report_without_json(tmp_path, tiny_run):
    data = make_class_folders(tmp_path / "val", n=3)
    code, out, _ = run_cli("evaluate", "--model", tiny_run.path, "--data", data)
    assert code == 0
    assert "accuracy" in out and "confusion" in out and "misclassified" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out.strip().splitlines()[-1])


def test_train_with_wrong_path_is_a_clear_error_not_a_traceback(tmp_path):
    code, _, err = run_cli("train", "--data", tmp_path / "missing", "--runs-dir", tmp_path / "runs")
    assert code == 2 and "does not exist" in err and "Traceback" not in err


@pytest.mark.slow
def test_python_dash_m_catdog_trains_and_prints_the_run_folder_last(tmp_path, tiny_dataset):
    proc = subprocess.run(
        [sys.executable, "-m", "catdog", "train", "--data", tiny_dataset, "--model", "seed", "--epochs", "1",
         "--batch-size", "8", "--image-size", "32", "--val-split", "0.25", "--runs-dir", tmp_path, "--run-id", "cli"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == str(tmp_path / "cli")
    assert "epoch 1/1 - " in proc.stdout and "val_accuracy: " in proc.stdout


def test_runs_lists_the_saved_models_accuracy_not_the_best_epochs(tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("CATDOG_HOME", str(tmp_path / "h"))
    run = tmp_path / "h" / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"model": "seed"}))
    rows = [{"epoch": 1, "val_accuracy": 0.633}, {"epoch": 2, "val_accuracy": 0.517}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, _ = run_cli("runs")
    assert code == 0 and "val acc 0.5170" in out and "0.6330" not in out
    code, out, _ = run_cli("runs", "--json")
    assert json.loads(out.splitlines()[0])["val_accuracy"] == 0.517


def test_predict_names_the_model_once_and_marks_not_sure_answers(tmp_path, tiny_run, monkeypatch):
    from catdog.predict import Predictor

    load = Predictor.load.__func__

    def unsure_load(cls, *args, **kwargs):  # every answer under the Not-sure line
        predictor = load(cls, *args, **kwargs)
        predictor.uncertain_below = 1.01
        return predictor

    monkeypatch.setattr(Predictor, "load", classmethod(unsure_load))
    cats = [write_image(tmp_path / f"cat{i}.jpg", colour=CAT_COLOUR, seed=i) for i in range(2)]
    code, out, _ = run_cli("predict", *cats, "--model", tiny_run.path)
    first, *rows = out.strip().splitlines()
    assert code == 0 and first.startswith(f"model: {tiny_run.model_path.resolve()} (on ") and len(rows) == 2
    assert all(re.search(r"\tnot sure \(best guess (cat|dog)\)\t\d+\.\d%\t", row) for row in rows), rows


def test_predict_says_when_the_answer_comes_from_the_active_model(tmp_path, tiny_run, monkeypatch):
    monkeypatch.setenv("CATDOG_HOME", str(tmp_path / "home"))
    assert run_cli("use", tiny_run.path)[0] == 0
    code, out, _ = run_cli("predict", write_image(tmp_path / "a.jpg"))
    assert code == 0 and "the active model, set in the app or with `catdog use`" in out.splitlines()[0]


def test_predict_marks_not_a_cat_or_dog_answers_with_the_best_guess(tmp_path, run_with_check, tiny_run):
    from catdog.predict import Predictor

    run_dir = run_with_check[0]
    noise = write_image(tmp_path / "cup.png", colour=(250, 250, 250), seed=600)
    cat = write_image(tmp_path / "cat.jpg", colour=CAT_COLOUR, seed=3)
    expected = Predictor.load(run_dir).predict([noise, cat])
    assert expected[0].not_pet  # the premise: the check flags the noise photo
    code, out, _ = run_cli("predict", noise, cat, "--model", run_dir)
    first, *rows = out.strip().splitlines()
    assert code == 0 and "no 'not a cat or dog' check" not in first
    said = rf"not a cat or dog \(best guess {expected[0].label}\)"
    assert re.fullmatch(rf"{re.escape(str(noise))}\t{said}\t\d+\.\d%\t\(p_dog[=<>][0-9.]+\)", rows[0]), rows[0]
    assert ("not a cat or dog" in rows[1]) == expected[1].not_pet
    code, out, _ = run_cli("predict", noise, "--model", tiny_run.path)
    assert "; no 'not a cat or dog' check (catdog openset fit adds one))" in out.splitlines()[0]
    assert "not a cat or dog" not in out.splitlines()[1]
