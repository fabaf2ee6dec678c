"""Metrics: hand-checked values, directions, validation, positive label, reloaded models."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conveyor.data.schema import TableSchema
from conveyor.errors import ConfigError, TrainingError
from conveyor.training.evaluate import (
    METRICS_BY_TASK,
    Predictions,
    default_metric,
    evaluate_model,
    higher_is_better,
    metric_directions,
    positive_label,
    predict_rows,
    validate_metric,
)


class FixedModel:
    """A fitted-model fake with known outputs, so metric values can be checked by hand."""

    def __init__(self, classes: list[Any], proba: list[list[float]] | None, pred: list[Any]):
        self.classes_ = np.array(classes, dtype=object) if classes else None
        self._proba = np.array(proba) if proba is not None else None
        self._pred = np.array(pred)

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        assert list(features.columns) == ["f"]
        return self._pred

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        assert self._proba is not None
        return self._proba


SCHEMA = TableSchema(target="y", numeric=("f",))


@pytest.mark.parametrize("metric", METRICS_BY_TASK["binary"])
def test_scoring_one_metric_gives_its_value_among_all(metric: str) -> None:
    target = np.array(["no", "yes", "yes", "no"], dtype=object)
    p_yes = [0.1, 0.8, 0.4, 0.6]
    model = FixedModel(["no", "yes"], [[1 - p, p] for p in p_yes], [])
    predictions = predict_rows(model, pd.DataFrame({"f": [0.0] * 4}), target, task="binary")
    assert predictions.metrics("binary", only=metric) == {
        metric: predictions.metrics("binary")[metric]
    }


def test_binary_metrics_match_hand_computed_values() -> None:
    test = pd.DataFrame({"f": [0.0] * 4, "y": pd.Series(["no", "yes", "yes", "no"], dtype="str")})
    p_yes = [0.1, 0.8, 0.4, 0.6]
    model = FixedModel(["no", "yes"], [[1 - p, p] for p in p_yes], ["no", "yes", "no", "yes"])
    result = evaluate_model(model, test, schema=SCHEMA, task="binary")
    assert result.rows == 4
    m = result.metrics
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["roc_auc"] == pytest.approx(0.75)  # 3 of 4 (positive, negative) pairs ordered
    assert m["f1"] == pytest.approx(0.5)  # TP 1, FP 1, FN 1
    assert m["pr_auc"] == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)
    expected_loss = -(math.log(0.9) + math.log(0.8) + math.log(0.4) + math.log(0.4)) / 4
    assert m["log_loss"] == pytest.approx(expected_loss)
    assert result.to_dict() == {"metrics": m, "rows": 4}


def test_multiclass_metrics_match_hand_computed_values() -> None:
    test = pd.DataFrame({"f": [0.0] * 4, "y": ["a", "b", "c", "c"]})
    proba = [[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]]
    model = FixedModel(["a", "b", "c"], proba, ["a", "b", "c", "a"])
    m = evaluate_model(model, test, schema=SCHEMA, task="multiclass").metrics
    assert set(m) == set(METRICS_BY_TASK["multiclass"])
    assert m["accuracy"] == pytest.approx(0.75)
    # per class F1: a = 2/3 (P 1/2, R 1), b = 1, c = 2/3 (P 1, R 1/2)
    assert m["f1_macro"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)


def test_regression_metrics_match_hand_computed_values() -> None:
    test = pd.DataFrame({"f": [0.0] * 4, "y": [1.0, 2.0, 3.0, 4.0]})
    model = FixedModel([], None, [1.0, 2.0, 3.0, 6.0])
    m = evaluate_model(model, test, schema=SCHEMA, task="regression").metrics
    assert m == pytest.approx({"rmse": 1.0, "mae": 0.5, "r2": 1 - 4 / 5})


def test_rows_without_a_target_are_not_scored() -> None:
    test = pd.DataFrame({"f": [0.0] * 5, "y": [1.0, 2.0, 3.0, 4.0, np.nan]})
    model = FixedModel([], None, [1.0, 2.0, 3.0, 6.0])
    assert evaluate_model(model, test, schema=SCHEMA, task="regression").rows == 4


def test_undefined_metric_is_left_out_not_nan() -> None:
    test = pd.DataFrame({"f": [0.0] * 2, "y": ["yes", "yes"]})
    model = FixedModel(["no", "yes"], [[0.2, 0.8], [0.6, 0.4]], ["yes", "no"])
    m = evaluate_model(model, test, schema=SCHEMA, task="binary").metrics
    assert "roc_auc" not in m
    assert m["accuracy"] == pytest.approx(0.5)


def test_missing_feature_column_is_named() -> None:
    test = pd.DataFrame({"g": [0.0], "y": [1.0]})
    with pytest.raises(TrainingError, match="'f'"):
        evaluate_model(FixedModel([], None, [1.0]), test, schema=SCHEMA, task="regression")


@pytest.mark.parametrize(
    ("classes", "expected"),
    [(["yes", "no"], "yes"), ([0, 1], 1), ([False, True], True), ([">50K", "<=50K"], ">50K")],
)
def test_positive_label_is_the_greater_sorted_label(classes: list[Any], expected: Any) -> None:
    assert positive_label(classes) == expected


def test_directions_defaults_and_validation() -> None:
    directions = metric_directions()
    assert set(directions) == {m for ms in METRICS_BY_TASK.values() for m in ms}
    assert directions["roc_auc"] and directions["r2"] and directions["f1_macro"]
    assert not directions["rmse"] and not directions["log_loss"] and not directions["mae"]
    assert [default_metric(t) for t in ("binary", "multiclass", "regression")] == [
        "roc_auc",
        "f1_macro",
        "rmse",
    ]
    assert higher_is_better("accuracy")
    with pytest.raises(ConfigError, match="unknown metric 'auc'"):
        higher_is_better("auc")
    with pytest.raises(ConfigError, match="'rmse' does not apply to a binary task"):
        validate_metric("rmse", "binary")
    validate_metric("log_loss", "multiclass")


def test_a_reloaded_pipeline_evaluates_the_same(
    table: pd.DataFrame, holdout: pd.DataFrame, schemas: dict[str, TableSchema]
) -> None:
    """MLflow saves sklearn models with skops; the reloaded pipeline must still evaluate."""
    import skops.io as sio

    from conveyor.config import ModelSpec
    from conveyor.training.train import train_model

    schema = schemas["binary"]
    spec = ModelSpec(type="random_forest", params={"n_estimators": 20})
    pipeline = train_model(
        table, schema=schema, task="binary", models=[spec], metric="roc_auc", seed=0
    ).pipeline
    blob = sio.dumps(pipeline)
    reloaded = sio.loads(blob, trusted=sio.get_untrusted_types(data=blob))
    before = evaluate_model(pipeline, holdout, schema=schema, task="binary")
    after = evaluate_model(reloaded, holdout, schema=schema, task="binary")
    assert after == before
    assert before.metrics["roc_auc"] > 0.85


def test_multiclass_metrics_count_each_unseen_label_as_its_own_class() -> None:
    from sklearn import metrics as skm

    rng = np.random.default_rng(3)
    classes = np.asarray(["a", "b", "c"], dtype=object)
    target = rng.choice(["a", "b", "c", "new-1", "new-2"], size=300).astype(object)
    proba = rng.dirichlet([1, 1, 1], size=300)
    m = Predictions.from_outputs(target, proba, classes).metrics("multiclass")
    predicted = classes[proba.argmax(axis=1)]
    assert m["f1_macro"] == pytest.approx(skm.f1_score(target, predicted, average="macro"))


@pytest.mark.parametrize(
    "classes", [[0, 1], [False, True], ["<=50K", ">50K"]], ids=["int", "bool", "text"]
)
def test_binary_metrics_equal_scikit_learn_on_the_labels(classes: list[object]) -> None:
    from sklearn import metrics as skm

    rng = np.random.default_rng(4)
    target = np.asarray(classes)[rng.integers(0, 2, size=500)]
    p = rng.random(500)
    proba = np.column_stack([1 - p, p])
    predicted = np.asarray(classes)[proba.argmax(axis=1)]
    m = Predictions.from_outputs(target, proba, np.asarray(classes)).metrics("binary")
    positive = classes[1]
    assert m == pytest.approx(
        {
            "roc_auc": skm.roc_auc_score(target == positive, p),
            "pr_auc": skm.average_precision_score(target == positive, p),
            "f1": skm.f1_score(target, predicted, pos_label=positive),
            "log_loss": skm.log_loss(target, proba, labels=classes),
            "accuracy": skm.accuracy_score(target, predicted),
        }
    )
