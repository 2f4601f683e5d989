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
    assert set(lines[0]) >= {"file", "answer", "label", "p_dog"}
    assert lines[0]["answer"] == (lines[0]["label"] if not lines[0]["uncertain"] else "not sure")
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
    assert code == 0 and "validation: 51.7% right" in out and "63.3%" not in out
    code, out, _ = run_cli("runs", "--json")
    assert json.loads(out.splitlines()[0])["val_accuracy"] == 0.517


def test_runs_gives_a_perfect_score_with_its_count_and_marks_the_active_model(tmp_path, monkeypatch):
    import json
    import zipfile

    monkeypatch.setenv("CATDOG_HOME", str(tmp_path / "h"))
    for run_id, n in (("small", 16), ("other", 168)):
        run = tmp_path / "h" / "runs" / run_id
        run.mkdir(parents=True)
        (run / "config.json").write_text(json.dumps({"model": "lite0", "n_validation": n}))
        (run / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "val_accuracy": 1.0 if n == 16 else 0.97}) + "\n")
        with zipfile.ZipFile(run / "model.keras", "w") as zf:
            zf.writestr("config.json", "{}")
    (tmp_path / "h" / "active_model.json").write_text(json.dumps({"model": str(tmp_path / "h" / "runs" / "small" / "model.keras")}))
    code, out, _ = run_cli("runs")
    lines = {line[2:].split()[0]: line for line in out.splitlines() if line[2:].startswith(("small", "other"))}
    assert "validation: 100% of 16 photos right" in lines["small"] and "1.0000" not in out
    assert "validation: 97.0% of 168 photos right" in lines["other"]
    assert lines["small"].startswith("* ") and lines["other"].startswith("  ")
    assert "* the active model" in out
    code, out, _ = run_cli("runs", "--json")
    flags = {row["id"]: row["active"] for row in map(json.loads, out.splitlines())}
    assert flags == {"small": True, "other": False}


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
    assert code == 0 and re.fullmatch(rf"Model: {re.escape(str(tiny_run.model_path.resolve()))} · (ONNX Runtime|TensorFlow)"
                                      r" · no 'not a cat or dog' check \(catdog openset fit adds one\)", first), first
    assert len(rows) == 2
    # The percentage belongs to the best guess, never to "not sure".
    assert all(re.search(r"\tnot sure\t\(best guess: (cat|dog), \d+\.\d%\)\t\(p_dog", row) for row in rows), rows


def test_predict_says_when_the_answer_comes_from_the_active_model(tmp_path, tiny_run, monkeypatch):
    monkeypatch.setenv("CATDOG_HOME", str(tmp_path / "home"))
    assert run_cli("use", tiny_run.path)[0] == 0
    code, out, _ = run_cli("predict", write_image(tmp_path / "a.jpg"))
    first = out.splitlines()[0]
    assert code == 0 and first.startswith("Model: ") and " (active; --model picks another) · " in first, first
    assert "`catdog use`" not in first and "set in the app" not in first
    code, out, _ = run_cli("predict", write_image(tmp_path / "b.jpg"), "--model", tiny_run.path)
    assert "(active" not in out.splitlines()[0]  # --model picked it: not the active one


def test_the_model_line_names_the_bundled_model_by_its_preset_in_one_short_line():
    from types import SimpleNamespace

    from catdog.cli import _model_line
    from catdog.model_files import bundled_model_dir

    bundled = bundled_model_dir()
    if bundled is None:
        pytest.skip("no bundled model in this checkout")
    preset = json.loads((bundled / "config.json").read_text())["model"]
    predictor = SimpleNamespace(source=str((bundled / "model.keras").resolve()), backend="onnxruntime", openset=object())
    assert _model_line(predictor, asked=None) == f"Model: bundled {preset} (active; --model picks another) · ONNX Runtime"
    assert _model_line(predictor, asked="bundled") == f"Model: bundled {preset} · ONNX Runtime"


def test_predict_marks_not_a_cat_or_dog_answers_with_the_best_guess(tmp_path, run_with_check, tiny_run):
    from catdog.predict import Predictor
    from catdog.verdicts import percent

    run_dir = run_with_check[0]
    noise = write_image(tmp_path / "cup.png", colour=(250, 250, 250), seed=600)
    cat = write_image(tmp_path / "cat.jpg", colour=CAT_COLOUR, seed=3)
    expected = Predictor.load(run_dir).predict([noise, cat])
    assert expected[0].not_pet  # the premise: the check flags the noise photo
    code, out, _ = run_cli("predict", noise, cat, "--model", run_dir)
    first, *rows = out.strip().splitlines()
    assert code == 0 and "no 'not a cat or dog' check" not in first
    # "not a cat or dog 90.4%" read as 90.4% sure it is no pet: the percentage now sits with the class it belongs to.
    said = rf"not a cat or dog\t\(if it were a pet: {expected[0].label}, {re.escape(percent(expected[0].confidence))}\)"
    assert re.fullmatch(rf"{re.escape(str(noise))}\t{said}\t\(p_dog[=<>][0-9.]+\)", rows[0]), rows[0]
    assert ("not a cat or dog" in rows[1]) == expected[1].not_pet
    code, out, _ = run_cli("predict", noise, "--model", tiny_run.path)
    assert out.splitlines()[0].endswith(" · no 'not a cat or dog' check (catdog openset fit adds one)")
    assert "not a cat or dog" not in out.splitlines()[1]


def test_evaluate_not_pets_counts_not_sure_answers_apart_from_cat_or_dog(tmp_path, run_with_check):
    import shutil

    unsure = tmp_path / "unsure"
    shutil.copytree(run_with_check[0], unsure)
    cfg = json.loads((unsure / "config.json").read_text())
    (unsure / "config.json").write_text(json.dumps({**cfg, "calibration": {**cfg.get("calibration", {}), "uncertain_below": 1.0}}))
    folder = tmp_path / "things"
    write_image(folder / "noise.png", size=(40, 40), seed=700, colour=(250, 250, 250))
    for i in range(3):
        write_image(folder / f"catlike{i}.jpg", colour=CAT_COLOUR, seed=800 + i)
    code, out, _ = run_cli("evaluate", "--model", unsure, "--not-pets", folder, "--json")
    result = json.loads(out)["not_pets"]
    let_through = result["n"] - result["flagged"]
    assert code == 0 and let_through > 0  # the premise: the cat-coloured photos pass the check
    assert result["missed"] == [] and len(result["not_sure"]) == let_through  # every one answered "not sure"
    code, out, _ = run_cli("evaluate", "--model", unsure, "--not-pets", folder)
    assert f"  answered cat or dog: 0 · answered not sure: {let_through}" in out.splitlines()
    assert "  missed " not in out and out.count("  not sure ") == let_through


def _fake_run(path, config: dict, val_accuracies: list[float]):
    from catdog.runs import Run

    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config))
    (path / "metrics.jsonl").write_text("".join(json.dumps({"epoch": i + 1, "val_accuracy": a}) + "\n"
                                                for i, a in enumerate(val_accuracies)))
    return Run(path)


def test_a_training_ends_with_before_and_after_when_the_run_recorded_before(tmp_path):
    from catdog.cli import _result_line

    warm = _fake_run(tmp_path / "warm", {"model": "seed", "before": {"val_accuracy": 0.5, "n": 60}}, [0.8, 0.9])
    assert _result_line(warm) == "Validation accuracy: 50.0% before training → 90.0% after, on 60 validation photos"
    new = _fake_run(tmp_path / "new", {"model": "seed"}, [0.75, 0.8333])
    assert _result_line(new) == "Validation accuracy: 83.3%"
    assert _result_line(_fake_run(tmp_path / "none", {"model": "seed"}, [])) is None  # no epoch finished


@pytest.mark.slow
def test_train_prints_one_line_per_epoch_and_no_keras_progress_bar(tmp_path, tiny_dataset, capfd):
    code, out, err = run_cli("train", "--data", tiny_dataset, "--model", "seed", "--epochs", "2", "--batch-size", "8",
                             "--image-size", "32", "--val-split", "0.25", "--precision", "float32",
                             "--runs-dir", tmp_path, "--run-id", "one", "--no-lock")
    keras_out = capfd.readouterr().out  # what Keras printed itself, outside catdog's stream
    assert code == 0, err
    lines = out.strip().splitlines()
    assert [line.split(" - ")[0] for line in lines if line.startswith("epoch ")] == ["epoch 1/2", "epoch 2/2"]
    assert "step" not in keras_out and "━" not in keras_out, keras_out  # no second line per epoch
    assert lines[-1] == str(tmp_path / "one")  # still last, for scripts
    assert re.fullmatch(r"Validation accuracy: \d+\.\d%", lines[-2]), lines[-2]
