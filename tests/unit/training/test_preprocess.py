"""Preprocessing: missing values, unseen and rare categories, scaling, feature mapping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conveyor.data.schema import TableSchema
from conveyor.errors import TrainingError
from conveyor.training.preprocess import (
    MIN_CATEGORY_COUNT,
    build_preprocessor,
    output_feature_sources,
)


def test_missing_values_become_finite_numbers(
    table: pd.DataFrame, schemas: dict[str, TableSchema]
) -> None:
    assert table["x2"].isna().any() and table["colour"].isna().any()
    output = build_preprocessor(schemas["binary"], scale=False).fit_transform(table)
    assert isinstance(output, np.ndarray)
    assert output.shape[0] == len(table)
    assert np.isfinite(output).all()


def test_unseen_category_is_accepted_and_shares_the_infrequent_column(
    table: pd.DataFrame, schemas: dict[str, TableSchema]
) -> None:
    preprocessor = build_preprocessor(schemas["binary"], scale=False).fit(table)
    rows = table.head(2).copy()
    rows["colour"] = pd.Series(["ultraviolet", "violet"], index=rows.index, dtype="str")
    out = preprocessor.transform(rows)
    # "violet" is rare in training (2%), so it and the unseen level map to the same column.
    assert (table["colour"] == "violet").sum() < MIN_CATEGORY_COUNT
    colour_columns = [
        i for i, source in enumerate(output_feature_sources(preprocessor)) if source == "colour"
    ]
    assert np.array_equal(out[0, colour_columns], out[1, colour_columns])
    assert out[0, colour_columns].sum() == 1.0


def test_scaling_standardises_numeric_columns_only_when_asked(table: pd.DataFrame) -> None:
    schema = TableSchema(target="value", numeric=("x1", "x3"))
    scaled = build_preprocessor(schema, scale=True).fit_transform(table)
    raw = build_preprocessor(schema, scale=False).fit_transform(table)
    assert np.allclose(scaled.mean(axis=0), 0.0, atol=1e-9)
    assert np.allclose(scaled.std(axis=0), 1.0, atol=1e-9)
    assert raw[:, 1].mean() > 3.0  # x3 is uniform on [0, 10]


def test_categorical_only_table(table: pd.DataFrame) -> None:
    schema = TableSchema(target="binary", categorical=("shape",))
    out = build_preprocessor(schema, scale=True).fit_transform(table)
    assert out.shape == (len(table), 2)
    assert set(np.unique(out)) == {0.0, 1.0}


def test_output_columns_map_back_to_input_features(
    table: pd.DataFrame, schemas: dict[str, TableSchema]
) -> None:
    preprocessor = build_preprocessor(schemas["binary"], scale=False).fit(table)
    sources = output_feature_sources(preprocessor)
    assert len(sources) == preprocessor.transform(table.head(1)).shape[1]
    assert sources[:3] == ["x1", "x2", "x3"]
    # red, green, blue, __missing__ and one infrequent column (violet); square, circle.
    assert sources.count("colour") == 5
    assert sources.count("shape") == 2


def test_no_features_is_an_error() -> None:
    with pytest.raises(TrainingError, match="no feature columns"):
        build_preprocessor(TableSchema(target="y"), scale=False)
