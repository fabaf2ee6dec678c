"""Parsing text columns into numbers and date/times, one distinct value at a time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from conveyor.data.coercion import factorize, parse_datetimes, parse_numbers
from conveyor.errors import DataError


def _text(values: Sequence[str | None]) -> pd.Series:
    return pd.Series(list(values), dtype="str")


def test_factorize_strips_values_counts_rows_and_marks_missing() -> None:
    uniques = factorize(_text([" a", "b", None, " a", "c "]))

    assert list(uniques.codes) == [0, 1, -1, 0, 2]
    assert list(uniques.values) == ["a", "b", "c"]
    assert list(uniques.counts) == [2, 1, 1]


def test_numbers_with_thousands_separators_parse_per_row() -> None:
    values, bad_rows, example = parse_numbers(
        factorize(_text(["1,234.5", "7", None, "-2,000", "7"])), probe=True
    )

    assert values is not None
    np.testing.assert_array_equal(values, [1234.5, 7.0, np.nan, -2000.0, 7.0])
    assert (bad_rows, example) == (0, None)


def test_unparsable_numbers_are_counted_by_row_with_an_example() -> None:
    values, bad_rows, example = parse_numbers(
        factorize(_text(["1", "n/a", "2", "n/a", "3"])), probe=False
    )

    assert values is not None
    assert np.isnan(values[[1, 3]]).all()
    assert (bad_rows, example) == (2, "n/a")


@pytest.mark.parametrize(
    "values",
    [["007", "12", "345"], ["red", "green", "blue", "4"]],
    ids=["leading-zero codes", "mostly words"],
)
def test_probing_gives_up_on_columns_that_are_not_numbers(values: list[str]) -> None:
    assert parse_numbers(factorize(_text(values)), probe=True) == (None, 0, None)


def test_dates_are_parsed_and_spread_back_over_rows() -> None:
    dates = parse_datetimes(
        factorize(_text(["2024-01-31", None, "2024-02-29", "2024-01-31"])),
        "signup",
        forced=False,
    )

    assert dates is not None
    assert dates.name == "signup"
    assert pd.api.types.is_datetime64_any_dtype(dates.dtype)
    assert list(dates.dt.strftime("%Y-%m-%d").fillna("-")) == [
        "2024-01-31",
        "-",
        "2024-02-29",
        "2024-01-31",
    ]


def test_text_that_is_not_dates_is_left_alone_unless_forced() -> None:
    assert parse_datetimes(factorize(_text(["basic", "premium"])), "plan", forced=False) is None


def test_forced_dates_that_do_not_parse_name_the_column() -> None:
    uniques = factorize(_text(["2024-01-31", "soon", "later", "never"]))

    with pytest.raises(DataError, match=r"'when' is forced date/time but 3 of 4 values"):
        parse_datetimes(uniques, "when", forced=True)
