"""feature_blocks: shuffling a raw column shuffles exactly its block of preprocessed columns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conveyor.data.schema import TableSchema, Task
from conveyor.training.evaluate import split_features_target
from conveyor.training.feature_blocks import FeatureBlocks, feature_blocks

MODELS: list[tuple[Task, str]] = [
    ("binary", "lightgbm"),
    ("multiclass", "random_forest"),
    ("regression", "ridge"),  # scaled numeric columns
]


def _blocks(
    task: Task,
    kind: str,
    messy_model: Callable[[Task, str], Any],
    holdout: pd.DataFrame,
    schemas: dict[str, TableSchema],
) -> tuple[Any, pd.DataFrame, FeatureBlocks]:
    pipeline = messy_model(task, kind)
    features, _ = split_features_target(holdout, schemas[task])
    blocks = feature_blocks(pipeline, features)
    assert blocks is not None, "a Conveyor pipeline preprocesses per value"
    return pipeline, features, blocks


@pytest.mark.parametrize(("task", "kind"), MODELS)
def test_shuffling_a_raw_column_shuffles_only_its_preprocessed_block(
    task: Task,
    kind: str,
    messy_model: Callable[[Task, str], Any],
    messy_holdout: pd.DataFrame,
    messy_schemas: dict[str, TableSchema],
) -> None:
    pipeline, features, blocks = _blocks(task, kind, messy_model, messy_holdout, messy_schemas)
    order = np.random.default_rng(0).permutation(len(features))
    for name, columns in blocks.columns.items():
        shuffled = features.copy()
        shuffled[name] = features[name].iloc[order].to_numpy()
        expected = blocks.matrix.copy()
        expected[:, columns] = blocks.matrix[np.ix_(order, columns)]
        np.testing.assert_array_equal(pipeline[:-1].transform(shuffled), expected, err_msg=name)


def test_each_preprocessed_column_comes_from_exactly_one_feature(
    messy_model: Callable[[Task, str], Any],
    messy_holdout: pd.DataFrame,
    messy_schemas: dict[str, TableSchema],
) -> None:
    _, _, blocks = _blocks("binary", "lightgbm", messy_model, messy_holdout, messy_schemas)
    owned = sorted(int(i) for columns in blocks.columns.values() for i in columns)
    assert owned == list(range(blocks.matrix.shape[1]))


def test_a_step_that_is_not_known_to_work_per_value_gets_no_blocks() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import Normalizer  # scales each row by its own norm

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.5, 0.1, 0.9, 0.3]})
    pipeline = Pipeline(
        [
            ("preprocess", ColumnTransformer([("num", Normalizer(), ["a", "b"])])),
            ("model", LinearRegression()),
        ]
    ).fit(frame, [1.0, 2.0, 3.0, 4.0])
    assert feature_blocks(pipeline, frame) is None
