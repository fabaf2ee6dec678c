"""Permutation importance: an informative feature outranks noise, for a score and a loss.

And the numbers are scikit-learn's ``permutation_importance`` of the whole pipeline, on a
messy table, whether the rows are preprocessed once or once per shuffle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conveyor.config import ModelSpec
from conveyor.data.schema import TableSchema, Task
from conveyor.training.evaluate import (
    higher_is_better,
    predict_rows,
    score_predictions,
    split_features_target,
)
from conveyor.training.importance import (
    PERMUTATION_ROWS,
    PermutationImportance,
    permutation_importances,
)
from conveyor.training.train import train_model

SCHEMA = TableSchema(target="label", numeric=("noise", "signal"), categorical=("colour",))
REGRESSION_SCHEMA = TableSchema(
    target="value", numeric=("noise", "signal"), categorical=("colour",)
)


def _table(rows: int, seed: int) -> pd.DataFrame:
    """``signal`` decides the target; ``noise`` and ``colour`` are independent of it."""
    rng = np.random.default_rng(seed)
    signal, noise = rng.normal(size=rows), rng.normal(size=rows)
    value = 3.0 * signal + rng.normal(scale=0.3, size=rows)
    return pd.DataFrame(
        {
            "noise": noise,
            "signal": signal,
            "colour": pd.Series(rng.choice(["red", "blue"], size=rows), dtype="str"),
            "label": pd.Series(np.where(value > 0, "yes", "no"), dtype="str"),
            "value": value,
        }
    )


def _importance(task: Task, metric: str, *, test_rows: int = 300) -> PermutationImportance:
    schema = SCHEMA if task == "binary" else REGRESSION_SCHEMA
    model = "logistic_regression" if task == "binary" else "ridge"
    pipeline = train_model(
        _table(400, seed=1),
        schema=schema,
        task=task,
        models=[ModelSpec(type=model)],
        metric=metric,
        seed=0,
    ).pipeline
    features, target = split_features_target(_table(test_rows, seed=2), schema)
    return permutation_importances(pipeline, features, target, task=task, metric=metric)


@pytest.mark.parametrize(("task", "metric"), [("binary", "roc_auc"), ("regression", "rmse")])
def test_the_informative_feature_ranks_above_noise(task: Task, metric: str) -> None:
    result = _importance(task, metric)
    assert result.ranked()[0][0] == "signal"
    assert result.mean["signal"] > result.mean["noise"] + 5 * result.std["noise"] + 0.05


def test_a_loss_is_reported_as_a_rise() -> None:
    result = _importance("regression", "rmse")
    assert result.method == "permutation importance: rise in rmse on 300 held-out rows, 5 repeats"


def test_at_most_the_row_cap_is_scored() -> None:
    result = _importance("binary", "roc_auc", test_rows=PERMUTATION_ROWS + 500)
    assert result.rows == PERMUTATION_ROWS


# -- the same numbers as scikit-learn's permutation_importance ---------------------------
MESSY_MODELS: list[tuple[Task, str, str]] = [
    ("binary", "lightgbm", "roc_auc"),
    ("binary", "logistic_regression", "log_loss"),
    ("multiclass", "random_forest", "f1_macro"),
    ("regression", "ridge", "rmse"),
]


def _scikit_learn(
    pipeline: Any, features: pd.DataFrame, target: np.ndarray, *, task: Task, metric: str
) -> PermutationImportance:
    """What ``permutation_importances`` computed before it preprocessed rows only once."""
    from sklearn.inspection import permutation_importance

    sign = 1.0 if higher_is_better(metric) else -1.0

    def scorer(estimator: Any, x: pd.DataFrame, y: np.ndarray) -> float:
        return sign * score_predictions(estimator, x, y, task=task)[metric]

    result = permutation_importance(
        pipeline, features, target, scoring=scorer, n_repeats=5, random_state=0, n_jobs=1
    )
    names = [str(c) for c in features.columns]
    return PermutationImportance(
        mean=dict(zip(names, map(float, result.importances_mean), strict=True)),
        std=dict(zip(names, map(float, result.importances_std), strict=True)),
        metric=metric,
        rows=len(target),
        repeats=5,
    )


def _assert_same_numbers(got: PermutationImportance, want: PermutationImportance) -> None:
    assert got.mean.keys() == want.mean.keys()
    for name in want.mean:
        assert got.mean[name] == pytest.approx(want.mean[name], rel=1e-12, abs=1e-15), name
        assert got.std[name] == pytest.approx(want.std[name], rel=1e-9, abs=1e-15), name


@pytest.mark.parametrize(("task", "kind", "metric"), MESSY_MODELS)
def test_the_importances_are_scikit_learns_on_a_messy_table(
    task: Task,
    kind: str,
    metric: str,
    messy_model: Callable[[Task, str], Any],
    messy_holdout: pd.DataFrame,
    messy_schemas: dict[str, TableSchema],
) -> None:
    pipeline = messy_model(task, kind)
    features, target = split_features_target(messy_holdout, messy_schemas[task])
    got = permutation_importances(pipeline, features, target, task=task, metric=metric)
    want = _scikit_learn(pipeline, features, target, task=task, metric=metric)
    _assert_same_numbers(got, want)


def test_predictions_made_beforehand_give_the_same_importances(
    messy_model: Callable[[Task, str], Any],
    messy_holdout: pd.DataFrame,
    messy_schemas: dict[str, TableSchema],
) -> None:
    pipeline = messy_model("binary", "lightgbm")
    features, target = split_features_target(messy_holdout, messy_schemas["binary"])
    made = predict_rows(pipeline, features, target, task="binary")
    given = permutation_importances(
        pipeline, features, target, task="binary", max_rows=200, predictions=made
    )
    fresh = permutation_importances(pipeline, features, target, task="binary", max_rows=200)
    assert (given.mean, given.std, given.rows) == (fresh.mean, fresh.std, fresh.rows)


def test_shuffles_predicted_in_many_small_calls_give_the_same_importances(
    monkeypatch: pytest.MonkeyPatch,
    messy_model: Callable[[Task, str], Any],
    messy_holdout: pd.DataFrame,
    messy_schemas: dict[str, TableSchema],
) -> None:
    from conveyor.training import importance

    pipeline = messy_model("binary", "lightgbm")
    features, target = split_features_target(messy_holdout, messy_schemas["binary"])
    one_call = permutation_importances(pipeline, features, target, task="binary")
    monkeypatch.setattr(importance, "_BATCH_VALUES", 500)  # a few rows per call
    many_calls = permutation_importances(pipeline, features, target, task="binary")
    assert (many_calls.mean, many_calls.std) == (one_call.mean, one_call.std)


def test_a_pipeline_that_preprocesses_rows_together_gets_scikit_learns_importances() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import Normalizer

    table = _table(300, seed=3)
    features, target = table[["noise", "signal"]], table["value"].to_numpy()
    pipeline = Pipeline(
        [
            ("preprocess", ColumnTransformer([("num", Normalizer(), ["noise", "signal"])])),
            ("model", Ridge()),
        ]
    ).fit(features, target)
    got = permutation_importances(pipeline, features, target, task="regression", metric="rmse")
    want = _scikit_learn(pipeline, features, target, task="regression", metric="rmse")
    _assert_same_numbers(got, want)
