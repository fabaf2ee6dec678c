"""Online metrics over labelled predictions, and the A/B significance tests."""

from __future__ import annotations

import random

import pytest
from sklearn.metrics import roc_auc_score

from conveyor.monitoring.online import OnlineWindow, compare_windows


def test_classifier_metrics_match_sklearn() -> None:
    rng = random.Random(3)
    window = OnlineWindow(regression=False, positive="yes", size=500)
    truths, scores = [], []
    for _ in range(400):
        truth = rng.choice(["yes", "no"])
        score = min(1.0, max(0.0, rng.gauss(0.65 if truth == "yes" else 0.35, 0.2)))
        score = round(score, 2)  # ties on purpose
        window.add(truth, "yes" if score >= 0.5 else "no", score)
        truths.append(truth == "yes")
        scores.append(score)
    metrics = window.metrics()
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(truths, scores))
    expected = sum((s >= 0.5) == t for s, t in zip(scores, truths, strict=True)) / 400
    assert metrics["accuracy"] == pytest.approx(expected)


def test_regression_metrics_and_the_bound() -> None:
    window = OnlineWindow(regression=True, size=3)
    for truth, predicted in [(100.0, 0.0), (1.0, 2.0), (2.0, 4.0), (3.0, 3.0)]:
        window.add(truth, predicted)
    assert len(window) == 3  # the oldest row left
    assert window.metrics() == pytest.approx({"rmse": (5 / 3) ** 0.5, "mae": 1.0})


def test_equal_versions_are_not_significantly_different() -> None:
    rng = random.Random(5)
    a, b = OnlineWindow(regression=False), OnlineWindow(regression=False)
    for _ in range(500):
        a.add("x", "x" if rng.random() < 0.8 else "y")
        b.add("x", "x" if rng.random() < 0.8 else "y")
    result = compare_windows(a, b)
    assert result.test == "two_proportion_z" and not result.significant
    assert result.rows_a == result.rows_b == 500


def test_a_better_regressor_is_significantly_better() -> None:
    rng = random.Random(7)
    a, b = OnlineWindow(regression=True), OnlineWindow(regression=True)
    for _ in range(300):
        truth = rng.gauss(0, 1)
        a.add(truth, truth + rng.gauss(0, 0.1))
        b.add(truth, truth + rng.gauss(0, 1.0))
    result = compare_windows(a, b)
    assert result.metric == "mae" and result.test == "welch_t"
    assert result.significant and result.a is not None and result.b is not None
    assert result.a < result.b


def test_too_few_rows_give_no_verdict() -> None:
    a, b = OnlineWindow(regression=False), OnlineWindow(regression=False)
    a.add("x", "x")
    result = compare_windows(a, b)
    assert result.p_value is None and not result.significant
