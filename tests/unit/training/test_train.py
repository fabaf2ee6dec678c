"""train_model: every task with LightGBM, XGBoost and the torch MLP; selection; seeds; errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conveyor.config import ModelSpec
from conveyor.data.schema import TableSchema, Task
from conveyor.errors import ConfigError, TrainingError
from conveyor.training.evaluate import default_metric, evaluate_model
from conveyor.training.models import default_model
from conveyor.training.train import TrainingResult, train_model

TASKS: tuple[Task, ...] = ("binary", "multiclass", "regression")
# A score each model must reach on the held-out rows (the synthetic signal is strong).
FLOOR = {"roc_auc": 0.9, "f1_macro": 0.75, "rmse": 2.0}
FAST_XGB = {"n_estimators": 60, "max_depth": 3}

_cache: dict[tuple[str, Task], TrainingResult] = {}


def _train(
    kind: str, task: Task, table: pd.DataFrame, schemas: dict[str, TableSchema]
) -> TrainingResult:
    """Train once per (model, task) for the whole module."""
    if (kind, task) not in _cache:
        spec = {
            "default": default_model(task),
            "xgboost": ModelSpec(type="xgboost", params=FAST_XGB),
            "torch_mlp": ModelSpec(type="torch_mlp"),
        }[kind]
        _cache[kind, task] = train_model(
            table,
            schema=schemas[task],
            task=task,
            models=[spec],
            metric=default_metric(task),
            seed=7,
        )
    return _cache[kind, task]


@pytest.mark.parametrize("kind", ["default", "xgboost", "torch_mlp"])
@pytest.mark.parametrize("task", TASKS)
def test_each_model_learns_each_task_and_speaks_original_labels(
    kind: str,
    task: Task,
    table: pd.DataFrame,
    holdout: pd.DataFrame,
    schemas: dict[str, TableSchema],
) -> None:
    if kind == "torch_mlp":
        pytest.importorskip("torch", reason="optional extra conveyor-mlops[torch] not installed")
    result = _train(kind, task, table, schemas)
    target = schemas[task].target
    assert [name for name, _ in result.pipeline.steps] == ["clean", "preprocess", "model"]
    assert result.candidates == ()
    json.dumps(result.params)  # persisted with the run
    predicted = result.pipeline.predict(holdout)  # holdout row 0 has an unseen colour
    metric = default_metric(task)
    score = evaluate_model(result.pipeline, holdout, schema=schemas[task], task=task)
    if task == "regression":
        assert result.label_classes is None
        assert predicted.dtype.kind == "f"
        assert score.metrics[metric] < FLOOR[metric]
        return
    labels = sorted(set(table[target]))
    assert result.label_classes == tuple(labels)
    assert set(predicted) <= set(labels)
    assert isinstance(predicted[0], str)
    proba = result.pipeline.predict_proba(holdout)
    assert proba.shape == (len(holdout), len(labels))
    # predict_proba columns follow label_classes: the argmax column is the predicted label
    assert list(np.array(result.label_classes)[proba.argmax(axis=1)]) == list(predicted)
    assert score.metrics[metric] > FLOOR[metric]


def test_default_model_params_are_recorded(
    table: pd.DataFrame, schemas: dict[str, TableSchema]
) -> None:
    result = _train("default", "binary", table, schemas)
    assert result.model == "lightgbm"
    assert result.params["n_estimators"] == 300
    assert result.params["random_state"] == 7
    assert result.fit_seconds > 0


@pytest.mark.parametrize("model_type", ["lightgbm", "torch_mlp"])
def test_same_seed_gives_identical_predictions(
    model_type: str, table: pd.DataFrame, holdout: pd.DataFrame, schemas: dict[str, TableSchema]
) -> None:
    if model_type == "torch_mlp":
        pytest.importorskip("torch", reason="optional extra conveyor-mlops[torch] not installed")
    spec = ModelSpec(
        type=model_type, params={"n_estimators": 50} if model_type == "lightgbm" else {}
    )

    def proba(seed: int) -> np.ndarray:
        result = train_model(
            table,
            schema=schemas["binary"],
            task="binary",
            models=[spec],
            metric="roc_auc",
            seed=seed,
        )
        return np.asarray(result.pipeline.predict_proba(holdout))

    first = proba(3)
    assert np.array_equal(first, proba(3))
    if model_type == "torch_mlp":  # the seed is used: another seed, other weights
        assert not np.array_equal(first, proba(4))


def test_several_candidates_pick_the_better_and_refit_on_all_rows(
    table: pd.DataFrame, schemas: dict[str, TableSchema]
) -> None:
    dummy = ModelSpec(type="sklearn.dummy.DummyClassifier", params={"strategy": "prior"})
    lightgbm = ModelSpec(type="lightgbm", params={"n_estimators": 50, "verbose": -1})
    result = train_model(
        table,
        schema=schemas["binary"],
        task="binary",
        models=[dummy, lightgbm],
        metric="roc_auc",
        seed=0,
    )
    assert result.model == "lightgbm"
    scores = {c.model: c.score for c in result.candidates}
    assert scores["sklearn.dummy.DummyClassifier"] == pytest.approx(0.5)
    assert scores["lightgbm"] > 0.85
    assert result.params["n_estimators"] == 50
    # the winner is refitted on all of train: same model as training it alone
    alone = train_model(
        table,
        schema=schemas["binary"],
        task="binary",
        models=[lightgbm],
        metric="roc_auc",
        seed=0,
    )
    assert np.array_equal(result.pipeline.predict_proba(table), alone.pipeline.predict_proba(table))


def test_lower_is_better_metric_picks_the_smaller_error(
    table: pd.DataFrame, schemas: dict[str, TableSchema]
) -> None:
    ridge = ModelSpec(type="ridge")
    dummy = ModelSpec(type="sklearn.dummy.DummyRegressor")
    result = train_model(
        table,
        schema=schemas["regression"],
        task="regression",
        models=[dummy, ridge],
        metric="rmse",
        seed=0,
    )
    assert result.model == "ridge"
    by_model = {c.model: c.score for c in result.candidates}
    assert by_model["ridge"] < by_model["sklearn.dummy.DummyRegressor"]


def test_metric_of_another_task_is_a_config_error(
    table: pd.DataFrame, schemas: dict[str, TableSchema]
) -> None:
    with pytest.raises(ConfigError, match="rmse"):
        train_model(
            table,
            schema=schemas["binary"],
            task="binary",
            models=[ModelSpec(type="ridge")],
            metric="rmse",
            seed=0,
        )


def test_fit_failure_names_the_model_and_the_cause(
    table: pd.DataFrame, schemas: dict[str, TableSchema]
) -> None:
    bad = ModelSpec(type="random_forest", params={"n_estimators": -1})
    with pytest.raises(TrainingError) as info:
        train_model(
            table,
            schema=schemas["binary"],
            task="binary",
            models=[bad],
            metric="roc_auc",
            seed=0,
        )
    message = str(info.value)
    assert "'random_forest'" in message and "n_estimators" in message
    assert "\n" not in message


def test_no_candidates_and_missing_columns_are_errors(
    table: pd.DataFrame, schemas: dict[str, TableSchema]
) -> None:
    with pytest.raises(TrainingError, match="no candidate models"):
        train_model(
            table, schema=schemas["binary"], task="binary", models=[], metric="roc_auc", seed=0
        )
    with pytest.raises(TrainingError, match="'colour'"):
        train_model(
            table.drop(columns=["colour"]),
            schema=schemas["binary"],
            task="binary",
            models=[ModelSpec(type="ridge")],
            metric="roc_auc",
            seed=0,
        )


def test_a_wrong_kind_of_candidate_fails_before_any_fit(
    table: pd.DataFrame, schemas: dict[str, TableSchema]
) -> None:
    with pytest.raises(TrainingError, match="'ridge' does not support classification"):
        train_model(
            table,
            schema=schemas["binary"],
            task="binary",
            models=[ModelSpec(type="ridge")],
            metric="roc_auc",
            seed=0,
        )
