"""The bundled model never disappears (AppTest): Home's facts, and every picker lists it beside the active run."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from catdog import catalog, config, hashing, predict
from tests.fixtures import REPO

TIMEOUT = 120

pytestmark = pytest.mark.slow  # the Predict page loads a model with TensorFlow


def open_page(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT).run()
    return at.switch_page(page).run() if page else at


def option_labels(at: AppTest, key: str) -> list[str]:
    box = at.selectbox(key=key)
    return list(box.options)


def test_home_on_first_launch_shows_the_bundled_models_real_facts(home):
    cfg = json.loads((config.assets_dir() / "model" / "config.json").read_text())
    at = open_page()
    assert not at.exception
    text = "\n".join(m.value for m in at.markdown) + "\n".join(c.value for c in at.caption)
    assert "`bundled`" in text
    assert f"preset **{cfg['model']}**" in text and f"{cfg['image_size']}px" in text
    assert "accuracy **" in text and " on " in text and "trained –" not in text


@pytest.mark.parametrize(("page", "key"), [("pages/predict.py", "predict_model"), ("pages/evaluate.py", "eval_model")])
def test_with_an_active_trained_run_the_pickers_still_list_the_bundled_model(home, tiny_run, page, key):
    predict.set_active_model(tiny_run.path)
    at = open_page(page)
    assert not at.exception, at.exception
    labels = option_labels(at, key)
    assert any(label.startswith("bundled ·") for label in labels), labels
    active = [label for label in labels if label.endswith("· active")]
    assert len(active) == 1 and active[0].startswith("tiny-seed")
    assert at.selectbox(key=key).format_func(at.selectbox(key=key).value) == active[0]  # the active one is preselected


def _fake_run(run_id: str, val_acc: list[float]):
    import zipfile

    from catdog import runs

    run = runs.create_run(None, run_id, "seed")
    run.write_config({"model": "seed", "image_size": 32, "class_names": ["cat", "dog"], "created": 1.0})
    run.write_metrics([{"epoch": i + 1, "val_accuracy": a} for i, a in enumerate(val_acc)])
    run.write_status("finished")
    with zipfile.ZipFile(run.model_path, "w") as zf:  # enough of a .keras archive to be made active (never loaded)
        zf.writestr("config.json", "{}")
    return run


def test_replacing_a_better_model_asks_first_and_a_near_chance_run_is_warned(home):
    weak = _fake_run("weak", [0.5, 0.52, 0.51])
    confirm, warn = catalog.replace_check(weak)
    assert confirm and "bundled" in confirm and "Replace it anyway?" in confirm and "51.0%" in confirm  # the saved (last) epoch
    assert warn and "near chance" in warn
    strong = _fake_run("strong", [0.9, 0.99])
    assert catalog.replace_check(strong) == (None, None)
    predict.set_active_model(strong.path)
    assert [e.name for e in catalog.list_models() if e.active] == ["strong"]
    assert catalog.list_models()[0].name == "bundled"  # still listed, first


def test_evaluation_record_is_preferred_and_says_which_data(tmp_path):
    from catdog.runs import Run

    (tmp_path / "config.json").write_text(json.dumps({"model": "compact", "image_size": 160}))
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "val_accuracy": 0.93}) + "\n")
    assert catalog.accuracy_facts(Run(tmp_path)) == (0.93, "last validation epoch, validation photos")
    (tmp_path / catalog.EVALUATION_FILE).write_text(json.dumps({"accuracy": 0.916, "n": 1999, "data": "/x/catdog-small/validation"}))
    assert catalog.accuracy_facts(Run(tmp_path)) == (0.916, "1,999 photos in catdog-small/validation (catdog evaluate)")


def test_the_figure_is_the_saved_models_last_epoch_unless_early_stopping_kept_the_best(tmp_path):
    from catdog.runs import Run

    rows = [{"epoch": 1, "val_accuracy": 0.7}, {"epoch": 2, "val_accuracy": 0.9}, {"epoch": 3, "val_accuracy": 0.8}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "config.json").write_text(json.dumps({"model": "seed"}))
    assert catalog.accuracy_facts(Run(tmp_path))[0] == 0.8
    assert catalog.run_name(Run(tmp_path)).startswith("seed 80.0% ")  # named by the model it saved, not the best epoch
    assert Run(tmp_path).summary()["val_accuracy"] == 0.8
    (tmp_path / "config.json").write_text(json.dumps({"model": "seed", "early_stopping": 3}))
    assert catalog.accuracy_facts(Run(tmp_path))[0] == 0.9
    assert catalog.run_name(Run(tmp_path)).startswith("seed 90.0% ")


def test_an_evaluation_of_an_older_model_is_ignored(tmp_path):
    from catdog.runs import Run

    (tmp_path / "model.keras").write_bytes(b"new model")
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "val_accuracy": 0.8}) + "\n")
    record = {"accuracy": 0.9, "n": 10, "data": "/d/v", "model_sha256": hashing.file_sha256(tmp_path / "model.keras")}
    (tmp_path / catalog.EVALUATION_FILE).write_text(json.dumps(record))
    assert catalog.accuracy_facts(Run(tmp_path))[0] == 0.9
    (tmp_path / "model.keras").write_bytes(b"a retrained model")
    assert catalog.accuracy_facts(Run(tmp_path))[0] == 0.8
