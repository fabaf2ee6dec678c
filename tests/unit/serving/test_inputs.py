"""Raw request columns -> the model's frame: checks, coercion and limits."""

from __future__ import annotations

import math

import pytest

from conveyor.serving.inputs import (
    InputColumn,
    InputSchema,
    RequestError,
    build_frame,
    coerce_column,
    coerce_columns,
    columns_from_records,
    columns_from_rows,
)

SCHEMA = InputSchema(
    (
        InputColumn("age", "number", nullable=True),
        InputColumn("job", "string", nullable=False),
    )
)
AGE, JOB = SCHEMA.columns


def test_frame_has_the_fitted_column_order_and_dtypes() -> None:
    frame = build_frame(SCHEMA, {"job": ["a", "b"], "age": [1, None]}, max_rows=10)
    assert list(frame.columns) == ["age", "job"]
    assert str(frame["age"].dtype) == "float64"
    assert str(frame["job"].dtype) == "str"
    assert frame["age"].tolist()[0] == 1.0
    assert math.isnan(frame["age"].tolist()[1])


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"age": [1]}, "missing column(s) 'job'"),
        ({"age": [1], "job": ["a"], "zip": ["1"]}, "unexpected column(s) 'zip'"),
        ({"age": [1, 2], "job": ["a"]}, "column 'job' has 1 values; expected 2"),
        ({"age": [], "job": []}, "empty batch"),
        ({}, "empty batch"),
        ({"age": [1] * 4, "job": ["a"] * 4}, "batch of 4 rows exceeds the limit of 3 rows"),
    ],
)
def test_frame_refuses_bad_shapes(columns: dict[str, list[object]], message: str) -> None:
    with pytest.raises(RequestError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        build_frame(SCHEMA, columns, max_rows=3)
    assert err.value.status == 422


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (AGE, "40", "column 'age' row 1: expected a number, got a string ('40')"),
        (AGE, True, "column 'age' row 1: expected a number, got a boolean (true)"),
        (AGE, [1], "column 'age' row 1: expected a number, got a list"),
        (AGE, math.inf, "column 'age' row 1: infinite value not allowed"),
        (AGE, 10**400, "column 'age' row 1: number out of range"),
        (JOB, 3, "column 'job' row 1: expected a string, got a number (3)"),
        (JOB, None, "column 'job' row 1: missing value not allowed"),
        (JOB, math.nan, "column 'job' row 1: missing value not allowed"),
        (
            JOB,
            "ab\ud800",
            "column 'job' row 1: not valid Unicode text (character 2: a lone surrogate)",
        ),
    ],
)
def test_bad_json_values_name_the_column_and_row(
    column: InputColumn, value: object, message: str
) -> None:
    good = 1.0 if column.kind == "number" else "a"
    with pytest.raises(RequestError) as err:
        coerce_column(column, [good, value])
    assert str(err.value) == message


def test_missing_numbers_are_nan_only_when_the_column_is_imputed() -> None:
    assert math.isnan(coerce_column(AGE, [None])[0])
    strict = InputColumn("hours", "number", nullable=False)
    with pytest.raises(RequestError, match="column 'hours' row 0: missing value not allowed"):
        coerce_column(strict, [math.nan])


def test_csv_text_is_parsed_per_column() -> None:
    assert coerce_column(AGE, ["1.5", " 2 ", ""], text=True)[:2] == [1.5, 2.0]
    assert math.isnan(coerce_column(AGE, [""], text=True)[0])
    assert coerce_column(JOB, ["x"], text=True) == ["x"]
    with pytest.raises(RequestError, match="column 'job' row 0: missing value not allowed"):
        coerce_column(JOB, [""], text=True)
    with pytest.raises(RequestError, match="column 'age' row 0: expected a number"):
        coerce_column(AGE, ["abc"], text=True)


def test_records_become_columns_and_must_share_their_keys() -> None:
    columns = columns_from_records([{"a": 1, "b": 2}, {"b": 4, "a": 3}], field="inputs")
    assert columns == {"a": [1, 3], "b": [2, 4]}
    with pytest.raises(RequestError, match="'inputs' row 1: missing column 'b'"):
        columns_from_records([{"a": 1, "b": 2}, {"a": 3}], field="inputs")
    with pytest.raises(RequestError, match="'inputs' row 1: column 'c' is not in row 0"):
        columns_from_records([{"a": 1}, {"a": 3, "c": 1}], field="inputs")
    with pytest.raises(RequestError, match="list of objects") as err:
        columns_from_records({"a": 1}, field="inputs")
    assert err.value.status == 400


def test_rows_follow_the_given_names_and_lengths() -> None:
    assert columns_from_rows([[1, "x"], [2, "y"]], ["age", "job"], field="data") == {
        "age": [1, 2],
        "job": ["x", "y"],
    }
    with pytest.raises(RequestError, match="'data' row 0 has 1 values; expected 2"):
        columns_from_rows([[1]], ["age", "job"], field="data")


def test_schema_describes_itself() -> None:
    assert SCHEMA.names == ("age", "job")
    assert SCHEMA.column("job") == JOB
    assert SCHEMA.column("zip") is None
    assert AGE.v2_datatype == "FP64"
    assert JOB.v2_datatype == "BYTES"
    assert SCHEMA.to_dict()["columns"][1] == {"name": "job", "type": "string", "nullable": False}


KNOWN = InputSchema(
    (
        InputColumn("age", "number", nullable=True),
        InputColumn("job", "string", nullable=True, categories=frozenset({"clerk", "nurse"})),
    )
)


def test_unknown_categories_are_counted_when_accepted() -> None:
    batch = coerce_columns(KNOWN, {"age": [1, 2, 3], "job": ["clerk", "pilot", None]}, max_rows=10)
    assert batch.columns["job"] == ["clerk", "pilot", None]
    assert batch.unknown == {"job": 1}


def test_unknown_categories_are_refused_naming_column_row_and_known_values() -> None:
    with pytest.raises(RequestError) as raised:
        coerce_columns(
            KNOWN, {"age": [1, 2], "job": ["clerk", "pilot"]}, max_rows=10, reject_unknown=True
        )
    assert raised.value.status == 422
    assert str(raised.value) == (
        "column 'job' row 1: unknown category 'pilot'; the model knows 'clerk', 'nurse'"
    )


def test_text_beyond_ascii_is_accepted() -> None:
    assert coerce_column(JOB, ["café", "東京"]) == ["café", "東京"]
