"""Reference profiles: bins, levels, round trip, predictions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from conveyor.data.schema import TableSchema
from conveyor.errors import DataError
from conveyor.monitoring.counting import bin_index, count_frame
from conveyor.monitoring.profile import (
    OTHER,
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    build_profile,
    prediction_columns,
)


def test_numeric_bins_are_deciles_with_open_outer_bins() -> None:
    frame = pd.DataFrame({"x": np.arange(1000, dtype=float), "y": 1.0})
    profile = build_profile(frame, TableSchema("y", numeric=("x",)), task="regression")
    x = profile.features["x"]
    assert isinstance(x, NumericProfile)
    assert len(x.edges) == 9 and x.counts == (100,) * 10
    assert list(bin_index(x.edges, np.array([-1e9, 1e9, np.nan]))) == [0, 9, -1]
    assert len(x.sample) == 1000 and x.stats["median"] == pytest.approx(499.5)


def test_tied_values_deduplicate_edges() -> None:
    frame = pd.DataFrame({"x": [0.0] * 700 + [1.0] * 300, "y": 1.0})
    x = build_profile(frame, TableSchema("y", numeric=("x",)), task="regression").features["x"]
    assert x.edges == (0.0, 1.0) and sum(x.counts) == 1000


def test_categorical_keeps_top_k_levels_and_counts_the_rest_as_other() -> None:
    values = ["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 5 + [None] * 10
    frame = pd.DataFrame({"c": pd.Series(values, dtype="str"), "y": 1.0})
    profile = build_profile(frame, TableSchema("y", categorical=("c",)), task="binary", top_k=2)
    c = profile.features["c"]
    assert isinstance(c, CategoricalProfile)
    assert (c.levels, c.counts, c.nulls) == (("a", "b"), (50, 30, 20), 10)
    batch = pd.DataFrame({"c": [" a", "zzz", None, "c"]})
    counts = count_frame(profile, batch)["c"]
    assert list(counts.counts) == [1, 0, 2] and counts.nulls == 1
    assert c.bin_labels[-1] == OTHER


def test_profile_round_trips_through_json(churn: tuple[pd.DataFrame, TableSchema]) -> None:
    frame, schema = churn
    profile = build_profile(frame, schema, task="binary")
    text = json.dumps(profile.to_dict(), allow_nan=False)
    assert ReferenceProfile.from_dict(json.loads(text)) == profile
    assert len(text) < 60_000  # small enough to travel with every model version


def test_an_unknown_format_version_is_refused(churn: tuple[pd.DataFrame, TableSchema]) -> None:
    frame, schema = churn
    data = build_profile(frame.head(500), schema, task="binary").to_dict()
    data["format_version"] = 99
    with pytest.raises(DataError, match="format_version 99"):
        ReferenceProfile.from_dict(data)


def test_prediction_columns_of_a_binary_classifier() -> None:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=300)})
    y = np.where(x["a"] > 0, "yes", "no")
    model = LogisticRegression().fit(x, y)
    columns = prediction_columns(model, x, task="binary")
    assert sorted(columns) == ["prediction", "score[yes]"]
    assert set(columns["prediction"]) == {"yes", "no"}
    profile = build_profile(
        x.assign(t=y), TableSchema("t", numeric=("a",)), task="binary", predictions=columns
    )
    assert profile.predictions["prediction"].kind == "categorical"
    assert profile.predictions["score[yes]"].kind == "numeric"


def test_a_model_that_cannot_predict_is_a_data_error() -> None:
    with pytest.raises(DataError, match="could not predict"):
        prediction_columns(object(), pd.DataFrame({"a": [1.0]}), task="binary")
