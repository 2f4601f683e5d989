"""Evaluate page: how good is a model on a labelled folder, and where does it go wrong.

The model runs once per (model file version, folder); the threshold slider then
recomputes the metrics, the confusion matrix and the mistakes from the saved
probabilities, without running the model again.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import streamlit as st

from catdog import sources
from catdog.errors import CatdogError
from catdog.eval_plots import confusion_figure, pr_figure, reliability_figure, roc_auc, roc_figure
from catdog.evaluate import EvalReport, evaluate, metrics_at
from catdog.preprocess import load_display_image
from pages._nav import use_app_navigation
from pages._ui import default_dataset, load_model_file, model_picker_ui

REPORTS_KEY = "eval_reports"  # session_state: {(model path, mtime, folder): EvalReport}
THRESHOLD_KEY = "eval_threshold"
MAX_REPORTS = 4  # each report holds one float per image; keep a few for switching back and forth
GALLERY_SIZE = 12
CARDS_PER_ROW = 4
THUMBNAIL_SIDE = 240


def inputs_ui() -> tuple[Path, str] | None:
    """The model and folder pickers; None (with a message drawn) when there is no model."""
    left, right = st.columns(2)
    model = model_picker_ui("eval_model", left)
    if model is None:
        st.info(
            "**No trained model yet.** Train one on the **Train** page, or from a terminal with `catdog train --data PHOTOS`.",
            icon=":material/model_training:",
        )
        return None
    folder = right.text_input(
        "Labelled folder", value=default_dataset(), key="eval_folder",
        help="A folder with one sub-folder per class (cats/, dogs/), or a train/validation split: its validation part is used.",
    )
    return model, folder.strip()


def run_evaluation(model: Path, folder: str) -> EvalReport | None:
    """Run the model over the folder once; errors become a message, not a traceback."""
    if not folder:
        st.error("Enter the path of a labelled folder (with cats/ and dogs/ inside).")
        return None
    try:
        # The server's one path rule (as on the Data and Train pages), checked before the folder is even looked at.
        allowed = sources.resolve_local_folder(folder)
    except CatdogError as exc:
        missing = "does not exist" in str(exc)
        st.error(f"Folder not found: `{folder}`" if missing else str(exc), icon=":material/folder_off:")
        return None
    try:
        predictor = load_model_file(model)
        with st.spinner("Classifying every image in the folder…"):
            report = evaluate(predictor, allowed)
    except (CatdogError, OSError, ValueError) as exc:
        st.error(f"Cannot evaluate: {exc}")
        return None
    if report.n == 0:
        st.error(f"No readable labelled images in `{folder}`.")
        return None
    return report


def stored_report(key: tuple) -> EvalReport | None:
    return st.session_state.get(REPORTS_KEY, {}).get(key)


def store_report(key: tuple, report: EvalReport) -> None:
    reports = st.session_state.setdefault(REPORTS_KEY, {})
    reports.pop(key, None)
    reports[key] = report
    while len(reports) > MAX_REPORTS:
        reports.pop(next(iter(reports)))
    st.session_state[THRESHOLD_KEY] = float(report.threshold)  # a fresh report starts at the model's threshold


def metrics_ui(report: EvalReport, threshold: float) -> dict:
    """The headline numbers at the chosen threshold (deltas against the model's own)."""
    labels, probs = np.asarray(report.labels), np.asarray(report.probs)
    now = metrics_at(labels, probs, threshold)
    base = metrics_at(labels, probs, report.threshold)
    cols = st.columns(6)
    for col, name in zip(cols, ("accuracy", "precision", "recall", "f1")):
        delta = now[name] - base[name]
        col.metric(name.capitalize() if name != "f1" else "F1", f"{now[name]:.1%}",
                   delta=f"{delta:+.1%}" if abs(delta) >= 0.0005 else None, border=True)
    cols[4].metric("Log loss", f"{now['log_loss']:.3f}", border=True, help="Does not depend on the threshold.")
    auc = roc_auc(labels, probs)
    cols[5].metric("ROC AUC", "–" if np.isnan(auc) else f"{auc:.3f}", border=True)
    calibration = report.calibration()
    if calibration["ece"] is not None:
        st.caption(
            f"Calibration: ECE {calibration['ece']:.3f} (before the model's temperature {calibration['temperature']:.2f}: "
            f"{calibration['ece_uncalibrated']:.3f}) · log loss before calibration {calibration['log_loss_uncalibrated']:.3f} · "
            f"predictions under {report.uncertain_below:.0%} confidence show as *Not sure* on Predict"
        )
    return now



def charts_ui(report: EvalReport, threshold: float, confusion: list[list[int]]) -> None:
    left, middle, right = st.columns(3)
    left.plotly_chart(confusion_figure(confusion, report.class_names), key="eval_confusion")
    positive = report.class_names[1] if len(report.class_names) > 1 else "class 1"
    middle.plotly_chart(roc_figure(report.labels, report.probs, threshold), key="eval_roc")
    right.plotly_chart(pr_figure(report.labels, report.probs, threshold, positive=positive), key="eval_pr")
    left, _ = st.columns([1, 2])
    left.plotly_chart(reliability_figure(report.labels, report.probs, report.raw_probs), key="eval_reliability")


def gallery_ui(report: EvalReport, threshold: float) -> None:
    """The most confidently wrong images at this threshold, worst first."""
    wrong = dataclasses.replace(report, threshold=threshold).misclassified()
    st.subheader(f"Most confidently wrong ({len(wrong)} mistake{'s' if len(wrong) != 1 else ''})")
    if not wrong:
        st.success("No mistakes at this threshold.", icon=":material/check_circle:")
        return
    positive = report.class_names[1] if len(report.class_names) > 1 else "class 1"
    shown = wrong[:GALLERY_SIZE]
    for start in range(0, len(shown), CARDS_PER_ROW):
        for col, row in zip(st.columns(CARDS_PER_ROW), shown[start : start + CARDS_PER_ROW]):
            with col.container(border=True):
                try:
                    st.image(load_display_image(row["file"], THUMBNAIL_SIDE))
                except (CatdogError, OSError) as exc:
                    st.caption(f"cannot show: {exc}")
                st.markdown(f"**{Path(row['file']).name}**")
                st.caption(f"true **{row['true']}** · predicted **{row['predicted']}** · P({positive}) {row['p_dog']:.3f}")
    if len(wrong) > GALLERY_SIZE:
        st.caption(f"Showing the worst {GALLERY_SIZE} of {len(wrong)}.")


def report_ui(report: EvalReport) -> None:
    st.caption(
        f"{report.n} images · classes {' / '.join(report.class_names)} · model threshold {report.threshold:g}"
        + (f" · {len(report.skipped)} unreadable file(s) skipped" if report.skipped else "")
    )
    if THRESHOLD_KEY not in st.session_state:  # Streamlit drops a widget's state on runs that did not draw it
        st.session_state[THRESHOLD_KEY] = float(report.threshold)
    threshold_ui(report)
    if report.skipped:
        with st.expander(f"Skipped files ({len(report.skipped)})"):
            st.dataframe([{"file": f, "error": e} for f, e in report.skipped], hide_index=True)


@st.fragment
def threshold_ui(report: EvalReport) -> None:
    """The slider and everything that depends on it: a fragment, so a key press reruns only this part."""
    threshold = st.slider(
        "Threshold", 0.0, 1.0, step=0.01, key=THRESHOLD_KEY,
        help=f"An image is called {report.class_names[-1]} when P({report.class_names[-1]}) ≥ this value.",
    )
    now = metrics_ui(report, threshold)
    charts_ui(report, threshold, now["confusion"])
    gallery_ui(report, threshold)


def main() -> None:
    use_app_navigation()
    st.title("Evaluate")
    st.caption("Score a model on any folder of labelled photos: metrics, curves, and its worst mistakes.")
    picked = inputs_ui()
    if picked is None:
        return
    model, folder = picked
    key = (str(model), model.stat().st_mtime if model.exists() else 0.0, folder)
    if st.button("Evaluate", type="primary", icon=":material/analytics:", key="eval_run"):
        report = run_evaluation(model, folder)
        if report is not None:
            store_report(key, report)
    report = stored_report(key)
    if report is None:
        st.caption("Pick a model and a folder, then press **Evaluate**.")
        return
    report_ui(report)


main()
