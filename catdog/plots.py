"""Figures: the notebook's Matplotlib PNGs, and Plotly figures for the app."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from catdog.atomic import atomic_path
from catdog.runs import Run

METRIC_PAIRS = {"accuracy": ("accuracy", "val_accuracy"), "loss": ("loss", "val_loss")}


def save_notebook_plots(run: Run) -> list[Path]:
    """Write accuracy.png and loss.png as the notebook drew them (train red, validation blue)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = run.metrics()
    written = []
    for name, (train_key, val_key) in METRIC_PAIRS.items():
        fig, ax = plt.subplots(figsize=(6.4, 4.8))
        epochs = [r["epoch"] for r in rows]
        ax.plot(epochs, [r.get(train_key) for r in rows], "o-", color="red", label="train")
        if any(r.get(val_key) is not None for r in rows):
            ax.plot(epochs, [r.get(val_key) for r in rows], "o-", color="blue", label="validation")
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


def curves_figure(rows: Sequence[dict], metric: str = "accuracy", title: str | None = None):
    """Plotly figure of train vs validation for one metric, per epoch."""
    import plotly.graph_objects as go

    train_key, val_key = METRIC_PAIRS[metric]
    epochs = [r["epoch"] for r in rows]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=epochs, y=[r.get(train_key) for r in rows], mode="lines+markers", name="train"))
    fig.add_trace(go.Scatter(x=epochs, y=[r.get(val_key) for r in rows], mode="lines+markers", name="validation"))
    fig.update_layout(
        title=title or metric.capitalize(),
        xaxis_title="epoch",
        yaxis_title=metric,
        height=340,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", y=-0.25),
    )
    fig.update_xaxes(dtick=1)
    return fig


def compare_figure(runs: Sequence[Run], metric: str = "val_accuracy"):
    """One Plotly chart with a line per run for a validation metric."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for run in runs:
        rows = run.metrics()
        fig.add_trace(go.Scatter(x=[r["epoch"] for r in rows], y=[r.get(metric) for r in rows], mode="lines+markers", name=run.id))
    fig.update_layout(title=f"{metric} by run", xaxis_title="epoch", yaxis_title=metric, height=380, margin=dict(l=10, r=10, t=40, b=10))
    fig.update_xaxes(dtick=1)
    return fig
