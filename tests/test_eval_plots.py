"""ROC / PR math in catdog.eval_plots (numpy only) and its Plotly figures."""

from __future__ import annotations

import numpy as np
import pytest

from catdog import eval_plots


def test_perfect_classifier_has_auc_one_and_average_precision_one():
    labels = [0, 0, 0, 1, 1, 1]
    probs = [0.1, 0.2, 0.3, 0.7, 0.8, 0.9]
    assert eval_plots.roc_auc(labels, probs) == pytest.approx(1.0)
    assert eval_plots.average_precision(labels, probs) == pytest.approx(1.0)


def test_reversed_classifier_has_auc_zero():
    labels = [0, 0, 0, 1, 1, 1]
    probs = [0.9, 0.8, 0.7, 0.3, 0.2, 0.1]
    assert eval_plots.roc_auc(labels, probs) == pytest.approx(0.0)


def test_random_scores_have_auc_near_one_half():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 4000)
    probs = rng.random(4000)
    assert eval_plots.roc_auc(labels, probs) == pytest.approx(0.5, abs=0.03)
    assert eval_plots.average_precision(labels, probs) == pytest.approx(labels.mean(), abs=0.03)


def test_constant_scores_give_the_chance_diagonal():
    fpr, tpr, _ = eval_plots.roc_curve([0, 1, 0, 1], [0.5] * 4)
    assert fpr.tolist() == [0.0, 1.0] and tpr.tolist() == [0.0, 1.0]
    assert eval_plots.roc_auc([0, 1, 0, 1], [0.5] * 4) == pytest.approx(0.5)


def test_roc_points_match_counts_at_each_threshold():
    labels = [0, 1, 1, 0, 1]
    probs = [0.2, 0.9, 0.4, 0.6, 0.8]
    fpr, tpr, thresholds = eval_plots.roc_curve(labels, probs)
    assert thresholds[1:].tolist() == [0.9, 0.8, 0.6, 0.4, 0.2]
    assert tpr.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 2 / 3, 1, 1])
    assert fpr.tolist() == pytest.approx([0, 0, 0, 0.5, 0.5, 1])
    # One of the six (pos, neg) pairs is ranked wrongly: 0.6 (cat) above 0.4 (dog).
    assert eval_plots.roc_auc(labels, probs) == pytest.approx(5 / 6)


def test_pr_curve_precision_and_recall_at_each_threshold():
    recall, precision, _ = eval_plots.pr_curve([0, 1, 1, 0, 1], [0.2, 0.9, 0.4, 0.6, 0.8])
    assert recall.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 2 / 3, 1, 1])
    assert precision.tolist() == pytest.approx([1, 1, 1, 2 / 3, 3 / 4, 3 / 5])


def test_one_class_only_gives_nan_auc_not_an_error():
    assert np.isnan(eval_plots.roc_auc([1, 1, 1], [0.2, 0.5, 0.9]))
    assert np.isnan(eval_plots.roc_auc([], []))


def test_figures_show_auc_and_the_threshold_point():
    labels, probs = [0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9]
    roc = eval_plots.roc_figure(labels, probs, threshold=0.5)
    assert "AUC 0.750" in roc.data[0].name
    assert (roc.data[-1].x[0], roc.data[-1].y[0]) == (0.5, 0.5)  # 1 of 2 cats and 1 of 2 dogs above 0.5
    pr = eval_plots.pr_figure(labels, probs, threshold=0.5)
    assert (pr.data[-1].x[0], pr.data[-1].y[0]) == (0.5, 0.5)
    heat = eval_plots.confusion_figure([[3, 1], [2, 4]], ["cat", "dog"])
    assert [list(row) for row in heat.data[0].z] == [[3, 1], [2, 4]]  # plotly keeps z as list, tuple or array by version
    assert list(heat.data[0].y) == ["true cat", "true dog"]


def test_roc_and_pr_legends_sit_inside_the_plot():
    labels, probs = [0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9]
    for fig in (eval_plots.roc_figure(labels, probs, 0.5), eval_plots.pr_figure(labels, probs, 0.5)):
        legend = fig.layout.legend
        assert 0 <= legend.x <= 1 and 0 <= legend.y <= 1 and legend.orientation != "h"  # plotly's default is x=1.02: beside it
