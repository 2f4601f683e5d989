"""Evaluate page: how good is a model on a labelled folder, and where does it go wrong.

The model runs once per (model file version, folder); the threshold slider then
recomputes the metrics, the confusion matrix and the mistakes from the saved
probabilities, without running the model again. An optional folder of photos
with no cat or dog measures the model's "not a cat or dog" check: the share it
flags there, next to the share of the pets it wrongly flags.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import streamlit as st

from catdog.catalog import openset_text
from catdog.errors import CatdogError
from catdog.eval_plots import confusion_figure, pr_figure, reliability_figure, roc_auc, roc_figure
from catdog.evaluate import EvalReport, evaluate, evaluate_not_pets, metrics_at
from catdog.preprocess import display_square
from catdog.verdicts import probability
from pages._nav import use_app_navigation
from pages._text import code_span, plain
from pages._ui import allowed_folder, default_dataset, load_model_file, model_picker_ui, model_version

REPORTS_KEY = "eval_reports"  # session_state: {(model path, mtime, folder): EvalReport}
NOT_PETS_KEY = "eval_not_pets_results"  # session_state: {(model path, mtime, folder): evaluate_not_pets' dict}
THRESHOLD_KEY = "eval_threshold"
MAX_REPORTS = 4  # each report holds one float per image; keep a few for switching back and forth
GALLERY_SIZE = 12
CARDS_PER_ROW = 4
THUMBNAIL_SIDE = 240


def inputs_ui() -> tuple[Path, str, str] | None:
    """The model, labelled-folder and non-pets-folder pickers; None (with a message drawn) when there is no model."""
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
    not_pets = right.text_input(
        "Photos with no cat or dog (optional)", key="eval_not_pets", placeholder="a folder of other photos",
        help="Any folder of photos without a cat or dog in them (sub-folders too, no labels needed): "
             "the page reports the share the model flags as *Not a cat or dog*.",
    )
    return model, folder.strip(), not_pets.strip()


def run_evaluation(model: Path, folder: str) -> EvalReport | None:
    """Run the model over the folder once; errors become a message, not a traceback."""
    if not folder:
        st.error("Enter the path of a labelled folder (with cats/ and dogs/ inside).")
        return None
    allowed = allowed_folder(folder)
    if allowed is None:
        return None
    try:
        predictor = load_model_file(model)
        with st.spinner("Classifying every image in the folder…"):
            report = evaluate(predictor, allowed)
    except (CatdogError, OSError, ValueError) as exc:
        st.error(f"Cannot evaluate: {plain(exc)}")
        return None
    if report.n == 0:
        st.error(f"No readable labelled images in {code_span(folder)}.")
        return None
    return report


def run_not_pets(model: Path, folder: str) -> dict | None:
    """The share of a folder of non-pet photos flagged "not a cat or dog"; errors become a message.

    A model without a check gives {} (nothing measured): `openset_ui` says so, and how to get one.
    """
    allowed = allowed_folder(folder)
    if allowed is None:
        return None
    try:
        predictor = load_model_file(model)
        if predictor.openset is None:
            return {}
        with st.spinner("Classifying the photos with no cat or dog…"):
            return evaluate_not_pets(predictor, allowed)
    except (CatdogError, OSError, ValueError) as exc:
        st.error(f"Cannot evaluate the photos with no cat or dog: {plain(exc)}", icon=":material/folder_off:")
        return None


def stored_report(key: tuple) -> EvalReport | None:
    return st.session_state.get(REPORTS_KEY, {}).get(key)


def store_report(key: tuple, report: EvalReport) -> None:
    reports = st.session_state.setdefault(REPORTS_KEY, {})
    reports.pop(key, None)
    reports[key] = report
    while len(reports) > MAX_REPORTS:
        reports.pop(next(iter(reports)))
    st.session_state[THRESHOLD_KEY] = float(report.threshold)  # a fresh report starts at the model's threshold


def store_not_pets(key: tuple, result: dict) -> None:
    results = st.session_state.setdefault(NOT_PETS_KEY, {})
    results.pop(key, None)
    results[key] = result
    while len(results) > MAX_REPORTS:
        results.pop(next(iter(results)))


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
    st.subheader(f"Most confidently wrong ({len(wrong):,} mistake{'s' if len(wrong) != 1 else ''})")
    if not wrong:
        st.success("No mistakes at this threshold.", icon=":material/check_circle:")
        return
    positive = report.class_names[1] if len(report.class_names) > 1 else "class 1"
    shown = wrong[:GALLERY_SIZE]
    for start in range(0, len(shown), CARDS_PER_ROW):
        for col, row in zip(st.columns(CARDS_PER_ROW), shown[start : start + CARDS_PER_ROW]):
            with col.container(border=True):
                try:
                    st.image(display_square(row["file"], THUMBNAIL_SIDE, pad=True))  # one height a row, the photo whole
                except (CatdogError, OSError) as exc:
                    st.caption(f"cannot show: {plain(exc)}")
                st.markdown(f"**{code_span(Path(row['file']).name)}**")
                truth, guess = code_span(row["true"]), code_span(row["predicted"])
                st.caption(f"true **{truth}** · predicted **{guess}** · P({plain(positive)}) {probability(row['p_dog'])}")
    if len(wrong) > GALLERY_SIZE:
        st.caption(f"Showing the worst {GALLERY_SIZE} of {len(wrong):,}.")


def report_caption_ui(report: EvalReport) -> None:
    st.caption(
        f"{report.n:,} images · classes {plain(' / '.join(report.class_names))} · model threshold {report.threshold:g}"
        + (f" · {len(report.skipped)} unreadable file(s) skipped" if report.skipped else "")
    )


def openset_ui(model: Path, report: EvalReport | None, not_pets: dict | None) -> None:
    """The "not a cat or dog" check: pets wrongly flagged, non-pets flagged; or that the model has none.

    Args:
        model: the model file (for the command that fits a check).
        report: the labelled folder's evaluation, or None.
        not_pets: `evaluate_not_pets` on the folder of non-pet photos; None or {} when not measured.
    """
    predictor = load_model_file(model)
    if predictor.openset is None:
        st.info(
            "**Not a cat or dog:** this model has no check, so it answers cat or dog for any photo, a coffee cup included. "
            f"Give it one, fitted on its own training photos: `catdog openset fit {model.parent}`, then press **Evaluate** again.",
            icon=":material/help:",
        )
        return
    with st.container(border=True):
        st.markdown("**Not a cat or dog**")
        left, right = st.columns(2)
        wrongly = report.open_set() if report is not None else None
        if wrongly is not None:
            left.metric("Pets wrongly flagged", f"{wrongly['share']:.1%}", border=True,
                        help="Cats and dogs of the labelled folder that the check calls *Not a cat or dog* (lower is better).")
            left.caption(f"{wrongly['flagged']:,} of {wrongly['n']:,} photos in the labelled folder")
        if not_pets:
            right.metric("Non-pets flagged", f"{not_pets['share']:.1%}", border=True,
                         help="Photos with no cat or dog that the check calls *Not a cat or dog* (higher is better).")
            right.caption(f"{not_pets['flagged']:,} of {not_pets['n']:,} photos in the folder with no cat or dog")
        else:
            right.caption("Add a folder of photos with no cat or dog above to measure the share it flags.")
        st.caption(f"The check's operating point, set on training photos, never on these: "
                   f"{plain(openset_text(predictor.openset.summary()))}")
        openset_lists_ui(wrongly, not_pets, predictor.class_names)


def openset_lists_ui(wrongly: dict | None, not_pets: dict | None, class_names: list[str]) -> None:
    """The files behind the two figures: pets flagged, non-pets answered a class, non-pets answered Not sure, unreadable ones."""
    if wrongly and wrongly["files"]:
        with st.expander(f"Pets wrongly flagged ({len(wrongly['files']):,})"):
            st.dataframe([{"file": f} for f in wrongly["files"]], hide_index=True, key="eval_pets_flagged")
    if not_pets and not_pets["missed"]:
        classes = plain(" or ".join(class_names))
        with st.expander(f"Photos with no cat or dog answered {classes} ({len(not_pets['missed']):,})"):
            st.dataframe(not_pets["missed"], hide_index=True, key="eval_not_pets_missed")
    if not_pets and not_pets.get("not_sure"):
        with st.expander(f"Photos with no cat or dog answered Not sure ({len(not_pets['not_sure']):,})"):
            st.dataframe(not_pets["not_sure"], hide_index=True, key="eval_not_pets_not_sure",
                         column_config={"label": st.column_config.TextColumn("best guess")})
    if not_pets and not_pets["skipped"]:
        with st.expander(f"Unreadable photos skipped ({len(not_pets['skipped']):,})"):
            st.dataframe(not_pets["skipped"], hide_index=True, key="eval_not_pets_skipped")


def report_ui(report: EvalReport) -> None:
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
        help=f"An image is called {plain(report.class_names[-1])} when P({plain(report.class_names[-1])}) ≥ this value.",
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
    model, folder, not_pets = picked
    version = model_version(model)  # a refitted check (`catdog openset fit`) is a new version too
    key, not_pets_key = (*version, folder), (*version, not_pets)
    if st.button("Evaluate", type="primary", icon=":material/analytics:", key="eval_run"):
        if folder or not not_pets:  # the non-pets folder alone is enough; neither gets the labelled folder's message
            report = run_evaluation(model, folder)
            if report is not None:
                store_report(key, report)
        if not_pets:
            result = run_not_pets(model, not_pets)
            if result is not None:
                store_not_pets(not_pets_key, result)
    report = stored_report(key) if folder else None
    not_pets_result = st.session_state.get(NOT_PETS_KEY, {}).get(not_pets_key) if not_pets else None
    if report is None and not_pets_result is None:
        st.caption("Pick a model and a folder, then press **Evaluate**.")
        return
    if report is not None:
        report_caption_ui(report)
    openset_ui(model, report, not_pets_result)
    if report is not None:
        report_ui(report)


main()
