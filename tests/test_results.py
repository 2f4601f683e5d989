"""Predictions as rows and CSV (the Predict page's table and download): the not_pet column and the check's score."""

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
    assert list(read[0]) == ["file", "label", "confidence", "not_sure", "not_pet", "p_dog", "openset_score", "error"]
    assert [(r["file"], r["not_pet"], r["openset_score"]) for r in read] == [
        ("rocket.jpg", "True", "7.5"), ("cat-1.jpg", "False", "-0.4"), ("broken.jpg", "False", "")]


def test_a_model_with_one_class_name_is_refused_with_the_names():
    with pytest.raises(ValueError, match=r"class_names must name two classes, got \['cat'\]"):
        prediction_rows(RESULTS, ["cat"])
