"""Batch scoring cleans a chunk as the server cleans a request."""

from __future__ import annotations

import math

import pandas as pd

from conveyor.pipeline.scoring import clean_chunk
from conveyor.serving.inputs import InputColumn, InputSchema, coerce_columns
from conveyor_cleaning.values import ValueRules

SCHEMA = InputSchema(
    (InputColumn("x", "number", nullable=True), InputColumn("c", "string", nullable=True)),
    rules=ValueRules(frozenset({"?"})),
)


def test_a_csv_chunk_is_cleaned_as_the_server_cleans_a_csv_body() -> None:
    fields = {"x": ["", " 7 ", "?", "1,234"], "c": ["", " a ", "?", "3"]}
    columns, bad, _ = clean_chunk(SCHEMA, pd.DataFrame(fields, dtype="str"), text=True)
    server = coerce_columns(SCHEMA, fields, max_rows=10, text=True).columns
    assert not bad.any()
    assert [None if math.isnan(v) else v for v in columns["x"]] == [
        None if math.isnan(v) else v for v in server["x"]
    ]
    assert list(columns["c"]) == server["c"]


def test_text_that_is_no_number_is_a_bad_row_with_its_reason() -> None:
    frame = pd.DataFrame({"x": ["1", "lots"], "c": ["a", "b"]}, dtype="str")
    _, bad, reasons = clean_chunk(SCHEMA, frame, text=True)
    assert bad.tolist() == [False, True]
    assert reasons == ["column 'x': expected a number, got 'lots'"]
