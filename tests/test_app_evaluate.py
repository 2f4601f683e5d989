"""Evaluate page (AppTest): metrics on a labelled folder, the live threshold, mistakes, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from catdog import evaluate as evaluate_module
from catdog import predict
from catdog.evaluate import evaluate, metrics_at
from tests.fixtures import REPO, make_class_folders, shown

REAL_EVALUATE = evaluate
TIMEOUT = 120  # the first evaluation loads TensorFlow and the model


pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_bundled_model")]  # AppTest with TensorFlow; no bundled model


@pytest.fixture
def active_model(home, tiny_run):
    predict.set_active_model(tiny_run.path)
    return tiny_run


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """5 cats and 5 dogs the tiny model has never seen."""
    return make_class_folders(tmp_path_factory.mktemp("eval") / "photos", n=5)


def open_evaluate_page() -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT).run()
    return at.switch_page("pages/evaluate.py").run()


def evaluated(folder) -> AppTest:
    at = open_evaluate_page()
    at.text_input(key="eval_folder").set_value(str(folder)).run()
    return at.button(key="eval_run").click().run()


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def changed_threshold(probs: np.ndarray, default: float) -> float:
    """A slider value (0.01 steps) that calls a different number of images dogs than `default`.

    Inside the range of the probabilities when they are spread enough, else an extreme.
    """
    count = int((probs >= default).sum())
    candidates = [round(t, 2) for t in np.arange(0.0, 1.001, 0.01) if int((probs >= round(t, 2)).sum()) != count]
    inside = [t for t in candidates if 0 < int((probs >= t).sum()) < len(probs)]
    return (inside or candidates)[len(inside or candidates) // 2]


def test_without_a_model_the_page_says_how_to_get_one(home):
    at = open_evaluate_page()
    assert not at.exception
    assert "No trained model yet" in at.info[0].value


def test_evaluate_shows_metrics_charts_and_mistakes_for_the_folder(active_model, labelled):
    at = evaluated(labelled)
    assert not at.exception and not at.error
    assert any("10 images" in c.value for c in at.caption)
    expected = evaluate(predict.Predictor.load(active_model.path), labelled)
    assert metric(at, "Accuracy") == f"{expected.accuracy:.1%}"
    assert metric(at, "Log loss") == f"{expected.log_loss:.3f}"
    assert {"Precision", "Recall", "F1", "ROC AUC"} <= {m.label for m in at.metric}
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert "Confusion matrix" in titles and "ROC curve" in titles
    confusion = next(
        json.loads(c.proto.spec)["data"][0]["z"]
        for c in at.get("plotly_chart")
        if "Confusion" in json.loads(c.proto.spec)["layout"]["title"]["text"]
    )
    assert confusion == expected.confusion and sum(map(sum, confusion)) == 10
    assert at.slider(key="eval_threshold").value == pytest.approx(expected.threshold)


def test_moving_the_threshold_updates_precision_recall_and_the_confusion(active_model, labelled, monkeypatch):
    at = evaluated(labelled)
    # The slider works from the saved probabilities: the model must not run again.
    monkeypatch.setattr(evaluate_module, "evaluate", lambda *a, **k: pytest.fail("the model ran again"))
    report = REAL_EVALUATE(predict.Predictor.load(active_model.path), labelled)
    labels, probs = np.asarray(report.labels), np.asarray(report.probs)
    threshold = changed_threshold(probs, report.threshold)
    at.slider(key="eval_threshold").set_value(threshold).run()
    assert not at.exception
    m = metrics_at(labels, probs, threshold)
    assert (metric(at, "Precision"), metric(at, "Recall")) == (f"{m['precision']:.1%}", f"{m['recall']:.1%}")
    before = metrics_at(labels, probs, report.threshold)
    assert (m["precision"], m["recall"]) != (before["precision"], before["recall"])
    spec = next(
        json.loads(c.proto.spec) for c in at.get("plotly_chart") if "Confusion" in json.loads(c.proto.spec)["layout"]["title"]["text"]
    )
    assert spec["data"][0]["z"] == m["confusion"]
    assert sum(row[1] for row in m["confusion"]) == int((probs >= threshold).sum())


def test_extreme_threshold_lists_every_cat_as_a_mistake_with_its_file_name(active_model, labelled):
    at = evaluated(labelled)
    at.slider(key="eval_threshold").set_value(0.0).run()
    assert any("5 mistakes" in h.value for h in at.subheader)
    names = [m.value for m in at.markdown if m.value.startswith("**`cat")]  # a file name is shown as code, literally
    assert sorted(names) == [f"**`cat{i:03d}.jpg`**" for i in range(5)]
    assert len(at.get("image")) == 5


def test_a_missing_folder_gives_an_error_not_a_traceback(active_model, tmp_path):
    at = evaluated(tmp_path / "nowhere")
    assert not at.exception
    assert "Folder not found" in at.error[0].value
    assert not at.metric


def test_a_folder_without_class_folders_gives_an_error(active_model, tmp_path):
    (tmp_path / "empty").mkdir()
    at = evaluated(tmp_path / "empty")
    assert not at.exception
    assert "Cannot evaluate" in at.error[0].value


@pytest.fixture
def model_with_check(home, run_with_check):
    predict.set_active_model(run_with_check[0])
    return run_with_check


def evaluated_with_not_pets(folder, not_pets) -> AppTest:
    at = open_evaluate_page()
    at.text_input(key="eval_folder").set_value(str(folder)).run()
    at.text_input(key="eval_not_pets").set_value(str(not_pets)).run()
    return at.button(key="eval_run").click().run()


def test_a_folder_of_non_pets_gives_the_share_flagged_next_to_the_pets_wrongly_flagged(model_with_check, labelled):
    run_dir, _, negatives, check = model_with_check
    at = evaluated_with_not_pets(labelled, negatives)
    assert not at.exception and not at.error
    predictor = predict.Predictor.load(run_dir)
    not_pets = evaluate_module.evaluate_not_pets(predictor, negatives)
    wrongly = evaluate(predictor, labelled).open_set()
    assert not_pets["n"] == 6 and not_pets["flagged"] > 0  # noise is far from the coloured training photos
    assert metric(at, "Non-pets flagged") == f"{not_pets['share']:.1%}"
    assert metric(at, "Pets wrongly flagged") == f"{wrongly['share']:.1%}"
    captions = " ".join(c.value for c in at.caption)
    assert f"{not_pets['flagged']} of 6 photos in the folder with no cat or dog" in captions
    assert f"{wrongly['flagged']} of 10 photos in the labelled folder" in captions
    assert f"threshold {check.threshold:.3g}" in shown(captions)  # the operating point, picked on training photos
    assert metric(at, "Accuracy")  # the cat/dog evaluation is still there


def _unsure_copy(run_dir, target):
    """A copy of a run whose every answer is under the Not-sure line (uncertain_below 1.0)."""
    import shutil

    shutil.copytree(run_dir, target)
    cfg = json.loads((target / "config.json").read_text())
    (target / "config.json").write_text(json.dumps({**cfg, "calibration": {**cfg.get("calibration", {}), "uncertain_below": 1.0}}))
    return target


def test_non_pets_answered_not_sure_are_not_counted_as_answered_cat_or_dog(home, run_with_check, tmp_path):
    from tests.fixtures import CAT_COLOUR, write_image

    unsure = _unsure_copy(run_with_check[0], tmp_path / "unsure")
    predict.set_active_model(unsure)
    folder = tmp_path / "things"
    for i in range(2):
        write_image(folder / f"noise{i}.png", size=(40, 40), seed=700 + i, colour=(250, 250, 250))
    for i in range(3):
        write_image(folder / f"catlike{i}.jpg", colour=CAT_COLOUR, seed=800 + i)
    result = evaluate_module.evaluate_not_pets(predict.Predictor.load(unsure), folder)
    let_through = result["n"] - result["flagged"]
    assert let_through > 0  # the premise: the cat-coloured photos pass the check
    assert result["missed"] == [] and len(result["not_sure"]) == let_through  # all answered "not sure", none cat or dog
    at = evaluated_with_not_pets("", folder)
    assert not at.exception and not at.error
    labels = [e.label for e in at.expander]
    assert f"Photos with no cat or dog answered Not sure ({let_through})" in labels
    assert not any("answered cat or dog" in label for label in labels), labels


def test_the_non_pets_folder_alone_is_measured_without_a_labelled_folder(model_with_check):
    _, _, negatives, _ = model_with_check
    at = evaluated_with_not_pets("", negatives)
    assert not at.exception and not at.error
    assert {m.label for m in at.metric} == {"Non-pets flagged"}


def test_a_model_without_a_check_says_so_and_how_to_get_one(active_model, labelled, tmp_path):
    from tests.fixtures import write_image

    write_image(tmp_path / "things" / "cup.png", colour=(250, 250, 250))
    at = evaluated_with_not_pets(labelled, tmp_path / "things")
    assert not at.exception and not at.error
    info = " ".join(i.value for i in at.info)
    assert "no check" in info and f"catdog openset fit {active_model.path.resolve()}" in info
    assert "Non-pets flagged" not in {m.label for m in at.metric} and metric(at, "Accuracy")


def test_the_non_pets_folder_follows_the_same_path_rule_and_messages(active_model, tmp_path, monkeypatch):
    monkeypatch.setenv("CATDOG_DATA_ROOTS", str(tmp_path / "root"))
    (tmp_path / "root").mkdir()
    outside = make_class_folders(tmp_path / "elsewhere", n=2)
    as_dataset = evaluated_with_not_pets(outside, "")
    as_not_pets = evaluated_with_not_pets("", outside)
    missing = evaluated_with_not_pets("", tmp_path / "root" / "nowhere")
    assert not as_not_pets.exception and not missing.exception
    assert [e.value for e in as_not_pets.error] == [e.value for e in as_dataset.error]
    assert "CATDOG_DATA_ROOTS" in shown(as_not_pets.error[0].value)
    assert [e.value for e in missing.error] == [f"Folder not found: `{tmp_path / 'root' / 'nowhere'}`"]
    assert not as_not_pets.metric


def test_a_photo_that_cannot_be_shown_says_so_with_its_path_as_typed(active_model, tmp_path):
    """'cannot show: {error}' names the file's path: a folder named as Markdown must read as typed, not become a link."""
    evil = "[click me](https:evil.example) :red[RED]"
    folder = make_class_folders(tmp_path / evil, n=3)
    at = evaluated(folder)
    assert not at.exception, at.exception
    (folder / "cats" / "cat000.jpg").unlink()  # gone between the evaluation and the gallery
    at.slider(key="eval_threshold").set_value(0.0).run()  # every cat is a mistake: the gallery shows the missing one too
    assert not at.exception, at.exception
    captions = [c.value for c in at.caption if "cannot show" in shown(c.value)]
    assert captions, [c.value for c in at.caption]
    assert all("](https:evil.example)" not in c and ":red[RED]" not in c for c in captions), captions
    assert any(f"{evil}/cats/cat000.jpg" in shown(c) for c in captions), captions
