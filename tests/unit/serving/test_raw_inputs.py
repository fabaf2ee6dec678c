"""Raw values at the server's boundary are cleaned by the model's own value rules."""

from __future__ import annotations

import math

import pytest

from conveyor.serving.inputs import (
    InputColumn,
    InputSchema,
    RequestError,
    check_columns,
    coerce_columns,
)
from conveyor_cleaning.values import ValueRules

RULES = ValueRules(frozenset({"?", "NA", "", "-999"}), strip=True)
SCHEMA = InputSchema(
    (
        InputColumn("hours per week", "number", nullable=True),
        InputColumn("work.class", "string", nullable=True),
    ),
    rules=RULES,
    ignored=frozenset({"row id", "class"}),
)


def coerce(columns: dict[str, list[object]], *, text: bool = False) -> dict[str, list[object]]:
    return coerce_columns(SCHEMA, columns, max_rows=100, text=text).columns


def test_markers_in_a_number_column_are_missing() -> None:
    hours = coerce({"hours per week": ["?", " NA ", -999, 40], "work.class": ["a"] * 4})
    assert [math.isnan(v) for v in hours["hours per week"]] == [True, True, True, False]


def test_numbers_stored_as_text_are_numbers() -> None:
    hours = coerce({"hours per week": [" 42 ", "1,234.5"], "work.class": ["a", "b"]})
    assert hours["hours per week"] == [42.0, 1234.5]


def test_categories_are_stripped_and_markers_missing() -> None:
    work = coerce({"hours per week": [1, 2, 3], "work.class": [" Private ", "?", 3]})
    assert work["work.class"] == ["Private", None, "3"]


def test_columns_the_model_dropped_are_accepted_and_ignored() -> None:
    batch = coerce({"row id": [7], "hours per week": [1], "work.class": ["a"], "class": [">50K"]})
    assert set(batch) == {"hours per week", "work.class"}


def test_padded_headers_match_the_models_columns() -> None:
    batch = coerce({" hours per week": [1], "work.class ": ["a"]})
    assert set(batch) == {"hours per week", "work.class"}


def test_an_unknown_column_is_named() -> None:
    with pytest.raises(RequestError, match=r"'wokr\.class'"):
        check_columns(SCHEMA, ["hours per week", "wokr.class"])


def test_text_that_is_no_number_names_column_row_and_value() -> None:
    with pytest.raises(RequestError, match=r"'hours per week' row 1: expected a number.*'lots'"):
        coerce({"hours per week": ["3", "lots"], "work.class": ["a", "b"]})


def test_without_rules_a_string_in_a_number_column_is_refused() -> None:
    strict = InputSchema(SCHEMA.columns)
    with pytest.raises(RequestError, match="expected a number"):
        coerce_columns(strict, {"hours per week": ["42"], "work.class": ["a"]}, max_rows=5)


def test_booleans_in_a_number_column_count_one_and_zero() -> None:
    hours = coerce({"hours per week": [True, False], "work.class": ["a", "b"]})
    assert hours["hours per week"] == [1.0, 0.0]


def test_an_empty_csv_field_is_missing_even_when_no_marker_says_so() -> None:
    schema = InputSchema(SCHEMA.columns, rules=ValueRules(frozenset({"?"})), ignored=frozenset())
    batch = coerce_columns(
        schema, {"hours per week": ["", "3"], "work.class": ["", "a"]}, max_rows=5, text=True
    )
    assert math.isnan(batch.columns["hours per week"][0])
    assert batch.columns["work.class"] == [None, "a"]


def test_a_huge_integer_in_a_category_column_is_its_digits() -> None:
    work = coerce({"hours per week": [1], "work.class": [10**30]})
    assert work["work.class"] == [str(10**30)]
