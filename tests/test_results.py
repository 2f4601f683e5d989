"""Predictions as rows and CSV (the Predict page's table and download): the answer, the not_pet column and the check's score."""

from __future__ import annotations

import csv
import io

import pytest

from catdog.predict import Prediction
from catdog.results import prediction_rows, rows_csv

RESULTS = [
    Prediction("rocket.jpg", "dog", 0.92, 0.92, False, not_pet=True, openset_score=7.5),
    Prediction("cat-1.jpg", "cat", 0.03, 0.97, False, not_pet=False, openset_score=-0.4),
    Prediction("broken.jpg", error="not a supported image"),
]


def test_rows_have_the_not_pet_flag_and_the_checks_score_for_every_photo():
    rows = prediction_rows(RESULTS, ["cat", "dog"])
    assert [r["not_pet"] for r in rows] == [True, False, False]
    assert [r["openset_score"] for r in rows] == [7.5, -0.4, None]
    assert rows[0]["label"] == "dog" and rows[0]["p_dog"] == 0.92  # the best guess is kept beside the flag
    assert rows[2]["error"] == "not a supported image" and rows[2]["label"] == ""


def test_the_csv_has_a_not_pet_column_and_reads_back():
    data = rows_csv(prediction_rows(RESULTS, ["cat", "dog"])).decode("utf-8")
    read = list(csv.DictReader(io.StringIO(data)))
    assert list(read[0]) == ["file", "answer", "label", "confidence", "not_sure", "not_pet", "p_dog", "openset_score", "error"]
    assert [(r["file"], r["not_pet"], r["openset_score"]) for r in read] == [
        ("rocket.jpg", "True", "7.5"), ("cat-1.jpg", "False", "-0.4"), ("broken.jpg", "False", "")]


def test_each_row_says_what_was_answered_beside_the_best_class():
    unsure = Prediction("blurry.jpg", "cat", 0.4, 0.6, True)
    rows = prediction_rows([*RESULTS, unsure], ["cat", "dog"])
    assert [r["answer"] for r in rows] == ["not a cat or dog", "cat", "unreadable", "not sure"]
    assert [r["label"] for r in rows] == ["dog", "cat", "", "cat"]  # label: the best class, as before
    read = list(csv.DictReader(io.StringIO(rows_csv(rows).decode("utf-8"))))
    assert read[0]["answer"] == "not a cat or dog" and read[0]["label"] == "dog"


def test_the_answer_uses_the_models_own_class_names():
    rows = prediction_rows([Prediction("bottle.jpg", "glass", 0.1, 0.9, False)], ["glass", "metal"])
    assert rows[0]["answer"] == "glass" and "p_metal" in rows[0]


def test_a_model_with_one_class_name_is_refused_with_the_names():
    with pytest.raises(ValueError, match=r"class_names must name two classes, got \['cat'\]"):
        prediction_rows(RESULTS, ["cat"])


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://x\",\"y\").jpg", "+1.jpg", "-2+3.png", "@SUM(A1).jpg", "\tcat.jpg"])
def test_a_file_name_that_starts_like_a_formula_is_written_as_text(name):
    rows = prediction_rows([Prediction(name, "cat", 0.1, 0.9, False), Prediction(name, error=name)], ["cat", "dog"])
    read = list(csv.DictReader(io.StringIO(rows_csv(rows).decode("utf-8"))))
    assert [r["file"] for r in read] == ["'" + name] * 2  # a spreadsheet shows it, never runs it
    assert read[1]["error"] == "'" + name
    assert read[0]["openset_score"] == "" and read[0]["p_dog"] == "0.1"  # numbers untouched


def test_ordinary_names_and_negative_scores_are_written_as_they_are():
    read = list(csv.DictReader(io.StringIO(rows_csv(prediction_rows(RESULTS, ["cat", "dog"])).decode("utf-8"))))
    assert read[1]["file"] == "cat-1.jpg" and read[1]["openset_score"] == "-0.4"
