"""Runs page: every training on this machine, compared side by side.

Every model and every run as cards, a chart that overlays the validation curves of the runs you
pick, and one run's details with its curves, log, and delete (confirmed).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from catdog import catalog, jobs
from catdog.compare import before_after_text
from catdog.plots import compare_figure, curves_figure
from catdog.runs import Run, delete_run, list_runs
from pages._nav import use_app_navigation
from pages._text import code_span, plain
from pages._ui import confirm_delete_ui, models_ui, report_ui, run_summary, use_model_ui

COMPARE_METRICS = {"val_accuracy": "Validation accuracy", "val_loss": "Validation loss", "accuracy": "Train accuracy", "loss": "Train loss"}
CONFIRM_KEY = "runs_confirm_delete"


RUN_CARD_WIDTH = 300  # px: three a row at 1440 px, one on a 390 px phone


def table_ui(runs: list[Run], active: Path | None) -> None:
    """The runs as cards in one wrapping row: three a row at 1440 px, one on a phone (a table would scroll sideways);
    `active` is the model file Predict uses."""
    row = st.container(horizontal=True, gap="small", key="runs_cards")
    for run in runs:
        with row.container(border=True, width=RUN_CARD_WIDTH):
            run_card_ui(run_summary(run, active))


def run_card_ui(row: dict) -> None:
    """One run in a few lines (`run_summary`'s row), as one Markdown block."""
    used = " · :green[:material/check_circle: used by Predict]" if row["in use"] else ""
    accuracy = "–" if row["val acc"] is None else f"{row['val acc']:.1%}"
    before = row["before → after"].split(" → ")[0] if row["before → after"] != "–" else None
    gain = f" · {before} before training" if before else ""
    lines = [f"{code_span(row['run'])} · {plain(row['status'])}{used}",
             f"validation accuracy **{accuracy}**{gain}",
             f":small[:gray[{row['epochs']} epochs in {row['duration']} · {row['date']}]]",
             f":small[:gray[{plain(row['settings'])}]]"]  # config.json's words
    st.markdown("  \n".join(lines))


def compare_ui(runs: list[Run]) -> None:
    """Overlay one metric of several runs on one chart."""
    with_metrics = [run for run in runs if run.metrics()]
    if not with_metrics:
        st.caption("No run has finished an epoch yet.")
        return
    ids = [run.id for run in with_metrics]
    names = {run.id: catalog.run_name(run) for run in with_metrics}
    c1, c2 = st.columns([3, 1])
    picked = c1.multiselect("Runs to compare", ids, default=ids[:3], format_func=names.get, key="runs_compare")
    metric = c2.selectbox("Metric", list(COMPARE_METRICS), format_func=COMPARE_METRICS.get, key="runs_metric")
    if not picked:
        st.caption("Pick one or more runs.")
        return
    chosen = [run for run in with_metrics if run.id in picked]
    st.plotly_chart(compare_figure(chosen, metric, title=f"{COMPARE_METRICS[metric]} by run"), key="runs_compare_chart")


def details_ui(runs: list[Run]) -> None:
    """One run: its curves, settings, log, and actions."""
    by_id = {run.id: run for run in runs}
    if st.session_state.get("runs_detail") not in by_id:  # e.g. the run just deleted
        st.session_state.pop("runs_detail", None)
    names = {run.id: catalog.run_name(run) for run in runs}
    run = by_id[st.selectbox("Run", list(by_id), format_func=names.get, key="runs_detail")]
    status = jobs.job_status(run)
    rows = run.metrics()
    gain = before_after_text(run)
    if gain:
        st.markdown(f"**Validation accuracy:** {gain}")
    if rows:
        before = run.config().get("before")
        left, right = st.columns(2)
        left.plotly_chart(curves_figure(rows, "accuracy", f"Accuracy · {run.id}", before=before), key=f"runs_acc_{run.id}")
        right.plotly_chart(curves_figure(rows, "loss", f"Loss · {run.id}", before=before), key=f"runs_loss_{run.id}")
    if status.state == "failed":
        st.error(f"This run failed: {plain(status.error or 'no reason recorded')}")
    with st.expander("Settings (config.json)"):
        st.json(run.config(), expanded=False)
    log = jobs.log_tail(run)
    if log:
        with st.expander("Training log (last lines)"):
            st.code(log, language="text")
    actions_ui(run, status)


def actions_ui(run: Run, status: jobs.JobStatus) -> None:
    if run.model_path.exists() and not status.active:
        use_model_ui(run, key="runs_use", primary=False)
    if status.state in ("finished", "stopped"):
        report_ui(run, key="runs_report")
    row = st.container(horizontal=True)
    if status.active:
        row.caption("Running: stop it on the Train page before deleting.")
        return
    if row.button("Delete run", icon=":material/delete:", key=f"runs_delete_{run.id}"):
        st.session_state[CONFIRM_KEY] = run.id
    if st.session_state.get(CONFIRM_KEY) == run.id:
        confirm_delete_run_ui(run)


def confirm_delete_run_ui(run: Run) -> None:
    def delete() -> None:
        delete_run(run)
        st.toast(f"Deleted {code_span(run.id)}")

    question = f"Delete run {code_span(run.id)} and its model for good?"
    confirm_delete_ui(question, "runs_delete", CONFIRM_KEY, delete, forget=("runs_detail",))


def main() -> None:
    use_app_navigation()
    st.title("Runs")
    runs = list_runs()
    models = catalog.list_models()
    if not runs:
        models_ui(models)
        st.info("No runs yet. Start one on the **Train** page, or with `catdog train --data DIR`.")
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
        return
    st.subheader("Models")
    st.caption("What Predict and Evaluate can use. The bundled model is always here.")
    models_ui(models)
    st.subheader("Runs")
    st.caption(f"{len(runs)} run(s), newest first.")
    table_ui(runs, next((e.path for e in models if e.active), None))
    st.subheader("Compare")
    compare_ui(runs)
    st.subheader("Details")
    details_ui(runs)


main()
