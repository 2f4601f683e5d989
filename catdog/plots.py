"""Figures: the notebook's Matplotlib PNGs, and Plotly figures for the app."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from catdog.atomic import atomic_path
from catdog.runs import Run

METRIC_PAIRS = {"accuracy": ("accuracy", "val_accuracy"), "loss": ("loss", "val_loss")}
# Okabe-Ito: tell-apart colours for every kind of colour vision (train blue, validation orange).
TRAIN_COLOUR, VAL_COLOUR = "#0072B2", "#E69F00"
RUN_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
ACCURACY_RANGE = (0.0, 1.02)  # accuracy axes run from 0 to 1: a 0.500-0.508 zoom reads as progress


def _layout(fig, title: str, yaxis_title: str, height: int) -> None:
    """Shared layout: left-aligned title (clear of the toolbar), legend under the plot."""
    fig.update_layout(
        title=dict(text=title, x=0.0, xanchor="left", y=0.98, yanchor="top"),
        xaxis_title="epoch", yaxis_title=yaxis_title, height=height,
        margin=dict(l=10, r=10, t=56, b=10),
        legend=dict(orientation="h", y=-0.22, x=0.0),
        modebar=dict(orientation="v"),
    )


def save_notebook_plots(run: Run) -> list[Path]:
    """Write accuracy.png and loss.png as the notebook drew them (in colour-blind-safe colours)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = run.metrics()
    written = []
    for name, (train_key, val_key) in METRIC_PAIRS.items():
        fig, ax = plt.subplots(figsize=(6.4, 4.8))
        epochs = [r["epoch"] for r in rows]
        ax.plot(epochs, [r.get(train_key) for r in rows], "o-", color=TRAIN_COLOUR, label="train")
        if any(r.get(val_key) is not None for r in rows):
            ax.plot(epochs, [r.get(val_key) for r in rows], "s--", color=VAL_COLOUR, label="validation")
        if name == "accuracy":
            ax.set_ylim(*ACCURACY_RANGE)
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(f"{name} ({run.id})")
        ax.legend()
        target = run.path / f"{name}.png"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
        plt.close(fig)
        written.append(target)
    return written


BEFORE_LABEL = "before training"


def before_point(before: dict | None, metric: str = "accuracy") -> float | None:
    """The starting model's validation figure for `metric` (config.json's `before`), or None."""
    value = (before or {}).get(METRIC_PAIRS[metric][1]) if isinstance(before, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def curves_figure(rows: Sequence[dict], metric: str = "accuracy", title: str | None = None, before: dict | None = None):
    """Plotly figure of train vs validation for one metric, per epoch.

    Args:
        rows: metrics.jsonl's rows.
        metric: "accuracy" or "loss".
        title: the chart's title (default: the metric).
        before: config.json's `before` (the starting model on the validation photos):
            drawn at epoch 0, named "before training" in the legend, and joined to the validation line.
    """
    import plotly.graph_objects as go

    train_key, val_key = METRIC_PAIRS[metric]
    epochs = [r["epoch"] for r in rows]
    start = before_point(before, metric)
    val_x, val_y = epochs, [r.get(val_key) for r in rows]
    if start is not None:
        val_x, val_y = [0, *val_x], [start, *val_y]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=epochs, y=[r.get(train_key) for r in rows], mode="lines+markers", name="train",
                             line=dict(color=TRAIN_COLOUR, width=2.5), marker=dict(symbol="circle")))
    fig.add_trace(go.Scatter(x=val_x, y=val_y, mode="lines+markers", name="validation",
                             line=dict(color=VAL_COLOUR, width=2.5, dash="dash"), marker=dict(symbol="square")))
    if start is not None:
        text = f"{start:.1%}" if metric == "accuracy" else f"{start:.3f}"
        # Named in the legend, its value on hover: a label drawn beside the point would cross the validation line.
        fig.add_trace(go.Scatter(x=[0], y=[start], mode="markers", name=BEFORE_LABEL,
                                 hovertemplate=f"{BEFORE_LABEL}: {text}<extra></extra>",
                                 marker=dict(symbol="diamond", size=12, color=VAL_COLOUR, line=dict(color="#000000", width=1))))
        epochs = [0, *epochs]
    _layout(fig, title or metric.capitalize(), metric, 340)
    if metric == "accuracy":
        fig.update_yaxes(range=list(ACCURACY_RANGE), tickformat=".0%")
    fig.update_xaxes(dtick=1 if len(epochs) <= 20 else None)
    return fig


def compare_figure(runs: Sequence[Run], metric: str = "val_accuracy", title: str | None = None):
    """One Plotly chart with a line per run, named by preset, size and accuracy (`catalog.run_name`)."""
    import plotly.graph_objects as go

    from catdog.catalog import run_name

    fig = go.Figure()
    longest = 0
    for i, run in enumerate(runs):
        rows = run.metrics()
        longest = max(longest, len(rows))
        fig.add_trace(go.Scatter(x=[r["epoch"] for r in rows], y=[r.get(metric) for r in rows], mode="lines+markers",
                                 name=run_name(run), line=dict(color=RUN_COLOURS[i % len(RUN_COLOURS)])))
    # The legend goes under the plot, so a phone-width chart keeps its plot area.
    _layout(fig, title or f"{metric} by run", metric, 380 + 22 * max(0, len(runs) - 2))
    fig.update_layout(showlegend=True)  # the run's readable name, even for a single run
    if "accuracy" in metric:
        fig.update_yaxes(range=list(ACCURACY_RANGE), tickformat=".0%")
    fig.update_xaxes(dtick=1 if longest <= 20 else None)
    return fig
