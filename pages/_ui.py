"""Small helpers shared by the studio's pages: formatting, the one model cache, navigation.

Everything here is plain Python or draws a little Streamlit; the work itself
lives in `catdog`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Callable, Sequence

import streamlit as st

from catdog import catalog, predict
from catdog.errors import CatdogError
from catdog.model_files import default_model, model_file
from catdog.predict import Predictor
from catdog.runs import Run, number
from catdog.sources import suggested_dataset
from catdog.verdicts import colour
from pages._text import code_span, plain

USE_CONFIRM_KEY = "use_model_confirm"  # session_state: the run whose "Use for Predict" awaits a yes
APP_NAVIGATION_KEY = "catdog_app_navigation"  # session_state: the entry point has run in this session
# Material icons render in every browser (emoji need a colour-emoji font on the viewer's machine).
STATE_ICONS = {
    "starting": ":blue[:material/hourglass_top:]", "queued": ":blue[:material/hourglass_top:]",
    "running": ":green[:material/play_circle:]", "finished": ":green[:material/check_circle:]",
    "stopped": ":orange[:material/stop_circle:]", "failed": ":red[:material/error:]", "unknown": ":gray[:material/help:]",
}


def format_duration(seconds: float | None) -> str:
    """'1h 02m', '3m 05s', '12s', or '–' for None."""
    if seconds is None:
        return "–"
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def format_time(timestamp) -> str:
    """A run's Unix time as local date and minute; '–' for a missing or unreadable value."""
    try:
        return dt.datetime.fromtimestamp(float(timestamp)).strftime("%Y-%m-%d %H:%M") if timestamp else "–"
    except (TypeError, ValueError, OverflowError, OSError):
        return "–"


def format_pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def class_badge(label: str, class_names: list[str]) -> str:
    """Markdown for a class label in its colour (`catdog.verdicts.colour`: class 0 yellow, class 1 blue)."""
    return f":{colour(label, class_names)[0]}[:material/pets: {plain(label.capitalize())}]"


def class_hex(label: str, class_names: list[str]) -> str:
    """The hex colour of a class's badge, for bars drawn in HTML."""
    return colour(label, class_names)[1]


def run_summary(run: Run, active: Path | None = None) -> dict:
    """One row of the runs table: `Run.summary()`, formatted, short enough for the wide layout's width.

    Args:
        run: the run folder.
        active: the model file Predict uses, to mark the run that made it.
    """
    summary = run.summary()
    preset = summary["preset"] or "–"
    return {
        "run": summary["id"],
        "in use": "✓" if active is not None and run.model_path.resolve() == active else "",
        "status": summary["state"],
        "epochs": f"{summary['epochs_done']}/{summary['epochs'] or '?'}",
        "val acc": summary["val_accuracy"],  # the saved model's, not the best epoch's
        "before → after": _before_after_cell(run),
        "duration": format_duration(summary["duration"]),
        "settings": f"{preset} · {settings_text(summary['config'])}",
        "date": format_time(summary["created"]),
    }


def _before_after_cell(run: Run) -> str:
    """'83.3% → 91.7%': a warm start's validation accuracy before the first epoch and of its saved model."""
    from catdog.compare import before_after

    figures = before_after(run)
    return f"{figures[0]:.1%} → {figures[1]:.1%}" if figures else "–"


def settings_text(cfg: dict) -> str:
    """'64px · batch 32 · lr 0.001' from a run's config.json (missing values left out)."""
    parts = []
    if cfg.get("image_size"):
        parts.append(f"{cfg['image_size']}px")
    if cfg.get("batch_size"):
        parts.append(f"batch {cfg['batch_size']}")
    if number(cfg.get("learning_rate")):
        parts.append(f"lr {number(cfg['learning_rate']):g}")
    if cfg.get("early_stopping"):
        parts.append(f"early stop {cfg['early_stopping']}")
    return " · ".join(parts) or "–"


def model_label(model_path: Path, active: Path | None = None) -> str:
    """A model file named by its run, with the preset and the saved model's validation accuracy."""
    run = Run(model_path.parent)
    cfg = run.config()
    best = run.model_val_accuracy()
    parts = [run.id]
    if cfg.get("model"):
        parts.append(str(cfg["model"]))
    if best is not None:
        parts.append(f"val acc {best:.1%}")
    label = " · ".join(parts)
    return f"{label} (active)" if active is not None and model_path == active else label


def model_picker_ui(key: str, container=None) -> Path | None:
    """The model selectbox over `catalog.list_models()` (bundled always, active marked and preselected).

    Returns the chosen model file, or None when there is no model at all.
    """
    container = container or st
    entries = {entry.path: entry for entry in catalog.list_models()}
    if not entries:
        return None
    options = list(entries)
    index = next((i for i, entry in enumerate(entries.values()) if entry.active), 0)
    path = container.selectbox("Model", options, index=index, format_func=lambda p: entries[p].label, key=key)
    entry = entries.get(path)
    if entry is not None and entry.accuracy is not None:
        container.caption(f"{entry.accuracy:.1%} accuracy on {plain(entry.accuracy_on)}")
    return path


MODEL_CARD_WIDTH = 300  # px: three a row at 1440 px, one on a 390 px phone


def model_card_ui(entry: catalog.ModelEntry, mark_active: bool = True) -> None:
    """One model in words: its name, whether Predict uses it (unless `mark_active` is False), preset and accuracy,
    and its "not a cat or dog" check said plainly, with how it decides folded away."""
    name = code_span(entry.name) + (" (ships with catdog)" if entry.kind == "bundled" else "")
    used = " · :green[:material/check_circle: used by Predict]" if entry.active and mark_active else ""
    st.markdown(name + used)
    # Names and figures from the model's folder (its data folders, its check's non-pet folders) go through plain().
    accuracy = (f"accuracy **{format_pct(entry.accuracy)}** on {plain(entry.accuracy_on)}" if entry.accuracy is not None
                else "accuracy –")
    st.caption(f"preset **{plain(entry.preset or '?')}** · {plain(entry.image_size or '?')}px · {accuracy} · "
               f"trained {format_time(entry.created)}")
    st.caption(plain(entry.openset_summary))
    if entry.openset is not None:
        with st.expander("How the check decides"):
            st.caption(plain(entry.openset_details))


def models_ui(entries: list[catalog.ModelEntry]) -> None:
    """Every usable model as a card, in one wrapping row (no table to scroll sideways on a phone)."""
    row = st.container(horizontal=True, gap="small")
    for entry in entries:
        with row.container(border=True, width=MODEL_CARD_WIDTH):
            model_card_ui(entry)


def use_model_ui(run: Run, key: str, primary: bool = True) -> None:
    """"Use this model for Predict": asks first when it would replace a better model, warns near chance."""
    if not run.model_path.exists():
        st.info("This run saved no model.")
        return
    default = default_model()
    if default is not None and model_file(default) == run.model_path.resolve():
        st.caption(":green[:material/check:] This is the model the Predict page uses.")
        return
    confirm, warn = catalog.replace_check(run)
    if warn:
        st.warning(plain(warn), icon=":material/warning:")
    risky = bool(confirm or warn)
    if st.button("Use this model for Predict", type="primary" if primary and not risky else "secondary",
                 icon=":material/image_search:", key=f"{key}_{run.id}",
                 help="Compares this run with the model Predict uses now, on this run's validation photos."):
        with st.spinner("Scoring the current model on this run's validation photos…"):
            confirm, warn = catalog.replace_check(run, measure=True)  # the same photos for both models
        if not (confirm or warn):
            _activate(run)
            return
        st.session_state[USE_CONFIRM_KEY] = run.id
    if st.session_state.get(USE_CONFIRM_KEY) == run.id:
        with st.container(border=True):
            st.markdown(plain(confirm) if confirm else "Use this model anyway?")  # it names models and data folders
            row = st.container(horizontal=True)
            if row.button("Yes, use it", key=f"{key}_yes_{run.id}"):
                st.session_state.pop(USE_CONFIRM_KEY, None)
                _activate(run)
            if row.button("Keep the current model", key=f"{key}_no_{run.id}"):
                st.session_state.pop(USE_CONFIRM_KEY, None)
                st.rerun()


def report_ui(run: Run, key: str) -> None:
    """**Download report**: one HTML file that opens offline (built once, then kept in the run folder)."""
    from catdog.report import evaluation_folder, write_report

    target = run.path / "report.html"
    metrics_file = run.path / "metrics.jsonl"
    fresh = target.exists() and (not metrics_file.exists() or target.stat().st_mtime >= metrics_file.stat().st_mtime)
    not_pets = st.text_input(
        "Photos with no cat or dog (optional)", key=f"{key}_not_pets_{run.id}", placeholder="a folder of other photos",
        help="The report then gives the share of them the model flags as *Not a cat or dog*.",
    ).strip()
    if not fresh or not_pets:
        folder = evaluation_folder(run)
        extra = f" and evaluates the model on {code_span(folder)} (a minute or so)" if folder else ""
        if st.button("Build report", icon=":material/description:", key=f"{key}_build_{run.id}",
                     help=f"Writes one HTML file with the facts, curves and sample predictions{extra}."):
            allowed = allowed_folder(not_pets) if not_pets else None
            if not_pets and allowed is None:
                return
            try:
                with st.spinner("Writing the report…"):
                    write_report(run, target, overwrite=True, not_pets=allowed)  # replaces only a previous report
            except (CatdogError, OSError, ValueError) as exc:
                st.error(f"Could not write the report: {plain(exc)}")
                return
            fresh = True
    if fresh:
        st.download_button("Download report", target.read_bytes(), f"catdog-{run.id}.html", "text/html",
                           icon=":material/download:", key=f"{key}_dl_{run.id}",
                           help="One self-contained HTML file: it opens offline in any browser.")


def allowed_folder(folder: str) -> Path | None:
    """A typed folder under the server's one path rule (`sources.resolve_local_folder`); None with the error drawn.

    The rule is checked before the folder is even looked at; every page says it the same way.
    """
    from catdog import sources

    try:
        return sources.resolve_local_folder(folder)
    except CatdogError as exc:
        missing = "does not exist" in str(exc)
        st.error(f"Folder not found: {code_span(folder)}" if missing else plain(exc), icon=":material/folder_off:")
        return None


def _activate(run: Run) -> None:
    try:
        load_model_file(run.model_path)  # as `catdog use`: a model that does not load is never made active
        predict.set_active_model(run.path)
    except (CatdogError, OSError) as exc:
        st.error(plain(exc))
        return
    st.success(f"The Predict page now uses {plain(catalog.run_name(run))}.", icon=":material/check_circle:")


def default_dataset() -> str:
    """The dataset folder to suggest: the Data page's choice, else the first one under CATDOG_HOME."""
    try:
        path = suggested_dataset()
    except Exception:  # noqa: BLE001 - a broken saved choice must not break the page
        path = None
    return str(path) if path else ""


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def load_predictor(model_path: str, mtime: float, openset_mtime: float = 0.0) -> Predictor:
    """Load a model once per file version for every page (the mtimes make a retrained file or a refitted check reload)."""
    return Predictor.load(model_path)


def model_version(path: Path) -> tuple[str, float, float]:
    """(path, the model file's mtime, its "not a cat or dog" check's mtime or 0): what a cached result depends on.

    `catdog openset fit` rewrites only the check beside the model, so the model's own mtime is not enough.
    """
    from catdog.openset import path_for

    path = Path(path)
    check = path_for(path)
    return str(path), path.stat().st_mtime if path.exists() else 0.0, check.stat().st_mtime if check.exists() else 0.0


def load_model_file(path: Path) -> Predictor:
    """`load_predictor` keyed by `model_version`."""
    return load_predictor(*model_version(path))


def active_model_file() -> Path | None:
    """The default model's file (active or bundled), for marking it in a selector."""
    default = default_model()
    return model_file(default) if default is not None else None


def nav_link(name: str, label: str, icon: str, help_text: str | None = None) -> None:
    """A link to pages/<name>.py in a bordered card, so it reads as a link (not plain text)."""
    with st.container(border=True):
        st.page_link(f"pages/{name}.py", label=f"**{label}** →", icon=icon, width="stretch")
        if help_text:
            st.caption(help_text)


def confirm_delete_ui(question: str, buttons: str, pending: str, delete: Callable[[], None], verb: str = "delete",
                      forget: Sequence[str] = ()) -> None:
    """The one "cannot be undone" confirmation: Yes runs `delete`, Cancel withdraws the request.

    Args:
        question: what is about to go, in Markdown ("Delete run `x`?").
        buttons: the buttons' key prefix (`<buttons>_yes`, `<buttons>_no`).
        pending: the session_state key that holds the request; cleared on Yes or Cancel.
        delete: does the deleting; a CatdogError or OSError is shown, not raised.
        verb: the action in the button and the error ("delete", "remove").
        forget: more session_state keys to clear once deleted.
    """
    with st.container(border=True):
        st.warning(f"{question} This cannot be undone.", icon=":material/warning:")
        row = st.container(horizontal=True)
        if row.button(f"Yes, {verb}", type="primary", key=f"{buttons}_yes"):
            try:
                delete()
            except (CatdogError, OSError) as exc:
                st.error(f"Could not {verb}: {plain(exc)}")
                return
            for key in (pending, *forget):
                st.session_state.pop(key, None)
            st.rerun()
        if row.button("Cancel", key=f"{buttons}_no"):
            st.session_state.pop(pending, None)
            st.rerun()
