"""Permutation importance: an informative feature outranks noise, for a score and a loss."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conveyor.config import ModelSpec
from conveyor.data.schema import TableSchema, Task
from conveyor.training.evaluate import split_features_target
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
