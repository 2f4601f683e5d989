"""Small helpers shared by the studio's pages: formatting and run summaries.

Everything here is plain Python or draws a little Streamlit; the work itself
lives in `catdog`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import streamlit as st

from catdog import config
from catdog.runs import Run

PAGES_DIR = Path(__file__).resolve().parent
# Material icons render in every browser (emoji need a colour-emoji font on the viewer's machine).
STATE_ICONS = {
    "starting": ":blue[:material/hourglass_top:]", "queued": ":blue[:material/hourglass_top:]",
    "running": ":green[:material/play_circle:]", "finished": ":green[:material/check_circle:]",
    "stopped": ":orange[:material/stop_circle:]", "failed": ":red[:material/error:]", "unknown": ":gray[:material/help:]",
}
CLASS_COLOURS = ("orange", "blue", "violet", "green")


def page_path(name: str) -> Path:
    """A page file next to this one (pages/<name>.py)."""
    return PAGES_DIR / f"{name}.py"


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
    """Markdown for a class label, coloured by its index (class 0 orange, class 1 blue)."""
    index = class_names.index(label) if label in class_names else len(CLASS_COLOURS) - 1
    return f":{CLASS_COLOURS[index % len(CLASS_COLOURS)]}[:material/pets: {label.capitalize()}]"


def _number(value) -> float | None:
    """A float from a hand-edited or damaged JSON value; None when it is not a number."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def run_duration(run: Run) -> float | None:
    """Seconds from start to end (or to now while it runs)."""
    status = run.status()
    started = _number(status.get("started")) or _number(run.config().get("created"))
    if not started:
        return None
    ended = _number(status.get("ended")) or (None if status.get("state") in ("failed", "stopped", "finished") else dt.datetime.now().timestamp())
    return (ended or _number(status.get("updated")) or started) - started


def run_summary(run: Run) -> dict:
    """One row of the runs table: what a person compares runs by."""
    cfg, status = run.config(), run.status()
    rows = run.metrics()
    return {
        "run": run.id,
        "date": format_time(cfg.get("created")),
        "preset": cfg.get("model", "–"),
        "settings": settings_text(cfg),
        "epochs": f"{len(rows)}/{cfg.get('epochs', '?')}",
        "best val acc": run.best_val_accuracy(),
        "status": status.get("state"),
        "duration": format_duration(run_duration(run)),
    }


def settings_text(cfg: dict) -> str:
    """'64px · batch 32 · lr 0.001' from a run's config.json (missing values left out)."""
    parts = []
    if cfg.get("image_size"):
        parts.append(f"{cfg['image_size']}px")
    if cfg.get("batch_size"):
        parts.append(f"batch {cfg['batch_size']}")
    if _number(cfg.get("learning_rate")):
        parts.append(f"lr {_number(cfg['learning_rate']):g}")
    if cfg.get("early_stopping"):
        parts.append(f"early stop {cfg['early_stopping']}")
    return " · ".join(parts) or "–"


def model_label(model_path: Path, active: Path | None = None) -> str:
    """A model file named by its run, with the preset and best validation accuracy."""
    run = Run(model_path.parent)
    cfg = run.config()
    best = run.best_val_accuracy()
    parts = [run.id]
    if cfg.get("model"):
        parts.append(str(cfg["model"]))
    if best is not None:
        parts.append(f"val acc {best:.1%}")
    label = " · ".join(parts)
    return f"{label} (active)" if active is not None and model_path == active else label


def default_dataset() -> str:
    """The dataset folder to suggest: the Data page's choice when catdog has one."""
    from catdog import data

    chosen = getattr(data, "active_dataset", None)
    if callable(chosen):
        try:
            path = chosen()
        except Exception:  # noqa: BLE001 - a broken saved choice must not break the page
            path = None
        if path:
            return str(path)
    found = sorted(p for p in config.datasets_dir().glob("*") if p.is_dir()) if config.datasets_dir().is_dir() else []
    return str(found[0]) if found else ""


def nav_link(name: str, label: str, icon: str) -> None:
    """A link to a page, drawn only if that page exists."""
    if page_path(name).exists():
        st.page_link(f"pages/{name}.py", label=label, icon=icon)


def use_app_navigation() -> None:
    """Rerun through streamlit_app.py when Streamlit ran this page file on its own.

    Until the entry point has called `st.navigation` once in a server process,
    Streamlit treats a `pages/` folder the old (v1) way: a first visit straight
    to /train runs pages/train.py alone, without the app's layout and menu.
    """
    from streamlit import config as st_config
    from streamlit.runtime.pages_manager import PagesManager

    # AppTest resets the flag before every run and drives pages directly; leave it alone there.
    if getattr(PagesManager, "uses_pages_directory", False) and not st_config.get_option("global.appTest"):
        PagesManager.uses_pages_directory = False
        st.rerun()
