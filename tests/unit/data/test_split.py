"""Train/test splits: sizes, stratification, determinism, time order and fallbacks."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from conveyor.config import SplitConfig
from conveyor.data.split import split_frame
from conveyor.errors import DataError


def _frame(n: int = 200, positive_share: float = 0.1) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    positives = int(n * positive_share)
    return pd.DataFrame(
        {
            "row": np.arange(n),
            "x": rng.normal(size=n),
            "when": pd.date_range("2024-01-01", periods=n, freq="h")[rng.permutation(n)],
            "y": pd.Series(["yes"] * positives + ["no"] * (n - positives), dtype="str"),
        }
    )


def test_sizes_cover_every_row_once_with_a_fresh_index() -> None:
    df = _frame(101)

    train, test = split_frame(df, target="y", task="binary", config=SplitConfig(test_size=0.2))

    assert (len(train), len(test)) == (80, 21)
    assert sorted([*train["row"], *test["row"]]) == list(range(101))
    assert train.index.tolist() == list(range(80))
    assert test.index.tolist() == list(range(21))


def test_auto_is_stratified_for_classification() -> None:
    df = _frame(200, positive_share=0.1)

    for seed in range(5):
        config = SplitConfig(test_size=0.25, seed=seed)
        train, test = split_frame(df, target="y", task="binary", config=config)
        assert (test["y"] == "yes").sum() == 5
        assert (train["y"] == "yes").sum() == 15


def test_same_seed_same_split_other_seed_other_split() -> None:
    df = _frame()

    _, first = split_frame(df, target="y", task="binary", config=SplitConfig(seed=1))
    _, again = split_frame(df, target="y", task="binary", config=SplitConfig(seed=1))
    _, other = split_frame(df, target="y", task="binary", config=SplitConfig(seed=2))

    pd.testing.assert_frame_equal(first, again)
    assert set(first["row"]) != set(other["row"])


def test_auto_is_random_for_regression() -> None:
    df = _frame().assign(y=np.linspace(0, 1, 200))

    _, test = split_frame(df, target="y", task="regression", config=SplitConfig(seed=3))

    assert len(test) == 40
    assert test["row"].max() - test["row"].min() > 100  # spread, not a block


def test_rare_class_falls_back_to_random_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    df = _frame(50, positive_share=0.0)
    df.loc[7, "y"] = "maybe"

    with caplog.at_level(logging.WARNING, logger="conveyor.data.split"):
        train, test = split_frame(df, target="y", task="multiclass", config=SplitConfig())

    assert (len(train), len(test)) == (40, 10)
    assert "'maybe'" in caplog.text
    assert "at random" in caplog.text


def test_time_split_holds_out_the_latest_rows() -> None:
    df = _frame(100)
    config = SplitConfig(strategy="time", time_column="when", test_size=0.3)

    train, test = split_frame(df, target="y", task="binary", config=config)

    assert len(test) == 30
    assert train["when"].max() < test["when"].min()
    assert test["when"].is_monotonic_increasing


def test_time_split_accepts_a_numeric_column() -> None:
    df = _frame(10).assign(epoch=np.arange(10)[::-1])
    config = SplitConfig(strategy="time", time_column="epoch", test_size=0.2)

    _, test = split_frame(df, target="y", task="binary", config=config)

    assert test["epoch"].tolist() == [8, 9]


@pytest.mark.parametrize(
    ("time_column", "message"),
    [
        (None, "needs split.time_column"),
        ("created", "split.time_column 'created' not found"),
        ("y", "must hold dates/times or numbers"),
    ],
)
def test_time_split_errors_name_the_problem(time_column: str | None, message: str) -> None:
    config = SplitConfig(strategy="time", time_column=time_column)

    with pytest.raises(DataError, match=message):
        split_frame(_frame(), target="y", task="binary", config=config)


def test_too_few_rows_is_an_error() -> None:
    with pytest.raises(DataError, match="at least 2 rows"):
        split_frame(_frame(1), target="y", task="binary", config=SplitConfig())
