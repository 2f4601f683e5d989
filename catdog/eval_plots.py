"""ROC and precision-recall curves (numpy only) and their Plotly figures.

Class 1 (dog) is the positive class, as in `catdog.evaluate.metrics_at`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go


def _sorted_counts(labels: Sequence[int], probs: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thresholds (distinct scores, high to low) and cumulative TP/FP counts at each."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    order = np.argsort(-p, kind="mergesort")
    y, p = y[order], p[order]
    # Ties share one threshold: keep only the last index of each run of equal scores.
    last = np.r_[np.nonzero(np.diff(p))[0], len(p) - 1] if len(p) else np.zeros(0, dtype=np.int64)
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    return p[last], tps, fps


def roc_curve(labels: Sequence[int], probs: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False-positive rate, true-positive rate and thresholds, starting at (0, 0).

    Rates are 0 where a class is absent (no curve is defined then).
    """
    thresholds, tps, fps = _sorted_counts(labels, probs)
    pos, neg = (tps[-1], fps[-1]) if len(tps) else (0, 0)
    tpr = np.r_[0.0, tps / pos] if pos else np.zeros(len(tps) + 1)
    fpr = np.r_[0.0, fps / neg] if neg else np.zeros(len(fps) + 1)
    return fpr, tpr, np.r_[np.inf, thresholds]


def pr_curve(labels: Sequence[int], probs: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Recall, precision and thresholds, starting at recall 0 with precision 1."""
    thresholds, tps, fps = _sorted_counts(labels, probs)
    pos = tps[-1] if len(tps) else 0
    precision = tps / np.maximum(tps + fps, 1)
    recall = tps / pos if pos else np.zeros(len(tps))
    return np.r_[0.0, recall], np.r_[1.0, precision], np.r_[np.inf, thresholds]


def auc(x: np.ndarray, y: np.ndarray) -> float:
    """Area under a curve by the trapezoid rule (x must be monotonic)."""
    if len(x) < 2:
        return float("nan")
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))  # np.trapezoid is numpy>=2 only


def roc_auc(labels: Sequence[int], probs: Sequence[float]) -> float:
    """ROC AUC, or NaN if only one class is present."""
    y = np.asarray(labels)
    if len(y) == 0 or y.min() == y.max():
        return float("nan")
    fpr, tpr, _ = roc_curve(labels, probs)
    return auc(fpr, tpr)


def average_precision(labels: Sequence[int], probs: Sequence[float]) -> float:
    """Step-wise area under the PR curve (sum of precision x recall increments)."""
    recall, precision, _ = pr_curve(labels, probs)
    if len(recall) < 2 or recall[-1] == 0:
        return float("nan")
    return float(np.sum(np.diff(recall) * precision[1:]))


# Legends inside the plot, in the corner a curve leaves empty: beside it they took ~40% of a narrow chart's width.
ROC_LEGEND = {"x": 0.98, "y": 0.02, "xanchor": "right", "yanchor": "bottom", "bgcolor": "rgba(255,255,255,0.85)"}
PR_LEGEND = {"x": 0.02, "y": 0.02, "xanchor": "left", "yanchor": "bottom", "bgcolor": "rgba(255,255,255,0.85)"}


def _marker(x: float, y: float, threshold: float) -> go.Scatter:
    return go.Scatter(x=[x], y=[y], mode="markers", name=f"threshold {threshold:g}", marker={"size": 12, "color": "crimson"})


def roc_figure(labels: Sequence[int], probs: Sequence[float], threshold: float | None = None) -> go.Figure:
    """The ROC curve with its AUC, a chance diagonal, and the threshold's point."""
    fpr, tpr, _ = roc_curve(labels, probs)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"ROC (AUC {roc_auc(labels, probs):.3f})"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"dash": "dash", "color": "gray"}))
    if threshold is not None and len(labels):
        y, pred = np.asarray(labels), np.asarray(probs) >= threshold
        neg, pos = max(int((y == 0).sum()), 1), max(int((y == 1).sum()), 1)
        fig.add_trace(_marker(float((pred & (y == 0)).sum() / neg), float((pred & (y == 1)).sum() / pos), threshold))
    fig.update_layout(title="ROC curve", xaxis_title="False-positive rate", yaxis_title="True-positive rate (recall)",
                      xaxis_range=[-0.01, 1], yaxis_range=[0, 1.03], legend=ROC_LEGEND)
    return fig


def pr_figure(labels: Sequence[int], probs: Sequence[float], threshold: float | None = None, positive: str = "dog") -> go.Figure:
    """The precision-recall curve with its average precision, and the threshold's point."""
    recall, precision, _ = pr_curve(labels, probs)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=recall, y=precision, mode="lines", name=f"PR (AP {average_precision(labels, probs):.3f})"))
    if threshold is not None and len(labels):
        y, pred = np.asarray(labels), np.asarray(probs) >= threshold
        tp = int((pred & (y == 1)).sum())
        fig.add_trace(_marker(tp / max(int((y == 1).sum()), 1), tp / max(int(pred.sum()), 1) if pred.sum() else 1.0, threshold))
    fig.update_layout(title=f"Precision-recall ({positive} = positive)", xaxis_title="Recall", yaxis_title="Precision",
                      xaxis_range=[0, 1.01], yaxis_range=[0, 1.03], legend=PR_LEGEND)
    return fig


def confusion_figure(confusion: Sequence[Sequence[int]], class_names: Sequence[str]) -> go.Figure:
    """A confusion-matrix heatmap: rows are the true class, columns the predicted one."""
    z = np.asarray(confusion, dtype=np.int64)
    names = [str(n) for n in class_names]
    fig = go.Figure(go.Heatmap(
        z=z.tolist(), x=[f"predicted {n}" for n in names], y=[f"true {n}" for n in names],
        text=z.tolist(), texttemplate="%{text}", colorscale="Blues", showscale=False,
    ))
    fig.update_layout(title="Confusion matrix", yaxis_autorange="reversed")
    return fig


def reliability_figure(labels: Sequence[int], probs: Sequence[float], raw_probs: Sequence[float] | None = None) -> go.Figure:
    """A reliability diagram: accuracy against stated confidence in 15 bins, with the ECE.

    A calibrated model's points lie on the diagonal. With `raw_probs`, the
    uncalibrated network is drawn too, so the effect of calibration shows.
    """
    from catdog.calibration import expected_calibration_error, reliability_bins

    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0.5, 1], y=[0.5, 1], mode="lines", name="perfectly calibrated", line={"dash": "dash", "color": "gray"}))
    series = [("calibrated", probs, "#0072B2", "circle")]
    if raw_probs is not None and len(raw_probs) and not np.allclose(raw_probs, probs):
        series.append(("uncalibrated", raw_probs, "#D55E00", "x"))
    for name, p, colour, symbol in series:
        bins = [b for b in reliability_bins(labels, p) if b["count"]]
        ece = expected_calibration_error(labels, p) if len(labels) else float("nan")
        fig.add_trace(go.Scatter(
            x=[b["confidence"] for b in bins], y=[b["accuracy"] for b in bins], mode="lines+markers",
            name=f"{name} (ECE {ece:.3f})", line={"color": colour}, marker={"symbol": symbol, "size": 9},
            customdata=[b["count"] for b in bins], hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f}<br>%{customdata} photos",
        ))
    fig.update_layout(title="Reliability (15 bins)", xaxis_title="Stated confidence", yaxis_title="Observed accuracy",
                      xaxis_range=[0.49, 1.01], yaxis_range=[0, 1.03], legend={"orientation": "h", "y": -0.25})
    return fig
