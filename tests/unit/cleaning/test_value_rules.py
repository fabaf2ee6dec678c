"""The value rules, and that training's cleaning and the model's first step agree."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from tests.messy_tables import FEATURES, TARGET, messy_table, scoring_rows

from conveyor.config import DataConfig
from conveyor.data.cleaning import clean_table, value_cleaner
from conveyor_cleaning.cleaner import ValueCleaner, split_cleaner
from conveyor_cleaning.values import (
    ValueRules,
    category_of,
    clean_categories,
    clean_numbers,
    number_of,
    parse_number,
)

RULES = ValueRules(frozenset({"?", "NA", "", "-999"}), strip=True)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" 7 ", 7.0),
        ("1,234.5", 1234.5),
        ("-1.5e3", -1500.0),
        (".5", 0.5),
        (3, 3.0),
        (True, 1.0),
        (np.int64(4), 4.0),
    ],
)
def test_numbers_parse(raw: object, expected: float) -> None:
    assert number_of(raw, RULES) == expected


@pytest.mark.parametrize("raw", ["?", " ? ", "", "NA", None, math.nan, pd.NA, -999, "-999"])
def test_markers_and_nulls_are_missing_numbers(raw: object) -> None:
    value = number_of(raw, RULES)
    assert value is not None
    assert math.isnan(value)


@pytest.mark.parametrize("raw", ["abc", "nan", "inf", "1_000", "12,34", "7 kg"])
def test_text_that_is_no_number_is_unparsable(raw: str) -> None:
    assert number_of(raw, RULES) is None
    assert parse_number(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Private ", "Private"),
        ("Self-emp", "Self-emp"),
        (3, "3"),
        (3.0, "3"),
        (2.5, "2.5"),
        (True, "1"),
        ("?", None),
        (" NA", None),
        ("", None),
        (None, None),
        (math.nan, None),
        (-999, None),
    ],
)
def test_categories(raw: object, expected: str | None) -> None:
    assert category_of(raw, RULES) == expected


def test_unstripped_categories_keep_their_spaces_but_markers_still_match() -> None:
    rules = ValueRules(frozenset({"?"}), strip=False)
    assert category_of(" Private", rules) == " Private"
    assert category_of(" ? ", rules) is None


def test_a_column_is_cleaned_exactly_as_its_values() -> None:
    raw = pd.Series(["1", " 2", "?", "x", None, "1,000", "-999", "2", "?", 3.5], dtype=object)
    numbers, markers, unparsable = clean_numbers(raw, RULES)
    expected = [number_of(v, RULES) for v in raw]
    assert [math.nan if e is None else e for e in expected] == pytest.approx(
        numbers.tolist(), nan_ok=True
    )
    assert (markers, unparsable) == (3, 1)
    categories, marker_count = clean_categories(raw, RULES)
    cleaned = [None if pd.isna(v) else v for v in categories.tolist()]
    assert cleaned == [category_of(v, RULES) for v in raw]
    assert marker_count == 3


def test_numbers_column_of_numbers_drops_numeric_markers() -> None:
    values, markers, _ = clean_numbers(pd.Series([1, -999, 3]), RULES)
    assert np.isnan(values[1])
    assert markers == 1


def _cleaned_and_cleaner(table: pd.DataFrame) -> tuple[pd.DataFrame, ValueCleaner]:
    config = DataConfig(source="table.csv", target=TARGET)
    clean, schema, report = clean_table(table, config)
    cleaner = value_cleaner(
        schema, na_values=config.na_values, strip=True, renamed=report.renamed_columns
    )
    return clean, cleaner.fit(clean[list(schema.features)])


@pytest.mark.parametrize("with_null_rows", [False, True])
def test_the_models_first_step_cleans_raw_rows_as_training_did(with_null_rows: bool) -> None:
    table = messy_table(400, seed=3, with_null_rows=with_null_rows)
    clean, cleaner = _cleaned_and_cleaner(table)
    features = cleaner.features
    pd.testing.assert_frame_equal(
        cleaner.transform(table).reset_index(drop=True),
        clean[features].reset_index(drop=True),
        check_dtype=True,
    )


def test_cleaning_a_cleaned_frame_changes_nothing() -> None:
    clean, cleaner = _cleaned_and_cleaner(messy_table(300, seed=4))
    once = cleaner.transform(clean)
    pd.testing.assert_frame_equal(cleaner.transform(once), once)


def test_dropped_columns_and_the_target_are_ignored_not_features() -> None:
    _, cleaner = _cleaned_and_cleaner(messy_table(300, seed=5))
    assert "row id" in cleaner.ignored
    assert TARGET in cleaner.ignored
    assert set(cleaner.features) == set(FEATURES)


def test_a_missing_feature_column_is_named() -> None:
    _, cleaner = _cleaned_and_cleaner(messy_table(300, seed=6))
    rows = scoring_rows(messy_table(300, seed=6)).drop(columns=["education-num"])
    with pytest.raises(ValueError, match=r"missing column.*'education-num'"):
        cleaner.transform(rows)


def test_split_cleaner_finds_the_first_step() -> None:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    _, cleaner = _cleaned_and_cleaner(messy_table(300, seed=7))
    rest = FunctionTransformer()
    found, after = split_cleaner(Pipeline([("clean", cleaner), ("rest", rest)]))
    assert found is cleaner
    assert after.steps == [("rest", rest)]
    assert split_cleaner(rest) == (None, rest)


def test_a_numeric_marker_written_as_text_is_missing_in_training_and_in_the_model() -> None:
    n = 60
    table = pd.DataFrame(
        {
            "reading": [" 1 ", "-999.0", "?", "2.5"] * (n // 4),
            "y": ["a", "b"] * (n // 2),
        }
    )
    config = DataConfig(source="t.csv", target="y", na_values=["?", "-999"])
    clean, schema, _ = clean_table(table, config)
    cleaner = value_cleaner(schema, na_values=config.na_values).fit(clean[["reading"]])
    trained = clean["reading"].tolist()
    assert np.isnan(trained[1])
    np.testing.assert_array_equal(cleaner.transform(table)["reading"].to_numpy(), trained)


def test_dates_used_as_categories_read_the_same_in_training_and_in_the_model() -> None:
    days = pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"] * 20)
    table = pd.DataFrame({"day": days, "y": ["a", "b", "c"] * 20})
    config = DataConfig(source="t.parquet", target="y", categorical_columns=["day"])
    clean, schema, _ = clean_table(table, config)
    cleaner = value_cleaner(schema).fit(clean[["day"]])
    assert cleaner.transform(table)["day"].tolist() == clean["day"].tolist()
    assert category_of(days[0].date(), RULES) == clean["day"].iloc[0]


def test_a_huge_integer_category_keeps_every_digit() -> None:
    assert category_of(12345678901234567, RULES) == "12345678901234567"
    assert category_of(10**400, RULES) == str(10**400)


@pytest.mark.parametrize(("raw", "expected"), [("true", 1.0), ("FALSE", 0.0)])
def test_boolean_text_is_a_number_as_a_csv_reader_types_it(raw: str, expected: float) -> None:
    assert number_of(raw, RULES) == expected
