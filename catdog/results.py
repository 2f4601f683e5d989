"""Predictions as rows: the Predict page's table and its CSV download.

One row per photo, errors included. `answer` is what catdog answered (a class,
"not sure", "not a cat or dog" or "unreadable": `catdog.verdicts.verdict`);
`label` is the model's best class, whatever the answer; `not_pet` and
`openset_score` come from the model's "not a cat or dog" check (False and blank
without one). Nothing here imports TensorFlow or Streamlit.
"""

from __future__ import annotations

import csv
import io
from typing import Iterable, Sequence

from catdog.verdicts import verdict


def prediction_rows(results: Iterable, class_names: Sequence[str]) -> list[dict]:
    """One dict per `catdog.predict.Prediction`, in order; the probability column is named `p_<class 1>`.

    Args:
        results: the predictions.
        class_names: the model's class names (class 1 names the probability column).

    Raises:
        ValueError: `class_names` has fewer than two names.
    """
    if len(class_names) < 2:
        raise ValueError(f"class_names must name two classes, got {list(class_names)!r}")
    key = f"p_{class_names[1]}"
    return [
        {"file": r.file, "answer": verdict(r), "label": r.label or "", "confidence": r.confidence, "not_sure": r.uncertain,
         "not_pet": r.not_pet, key: r.p_dog, "openset_score": r.openset_score, "error": r.error or ""}
        for r in results
    ]


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may read as the start of a formula


def safe_cell(value):
    """A text cell a spreadsheet shows as text: one that starts like a formula gets a leading apostrophe.

    A photo named `=HYPERLINK(...).jpg` would otherwise run as a formula when the CSV is opened in a
    spreadsheet (CSV injection, OWASP). Numbers, booleans and None are left alone.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def rows_csv(rows: list[dict]) -> bytes:
    """The rows as UTF-8 CSV with a header (None becomes an empty cell; formula-like text is quoted)."""
    if not rows:
        return b""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows({k: safe_cell(v) for k, v in row.items()} for row in rows)
    return buf.getvalue().encode("utf-8")
