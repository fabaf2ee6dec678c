"""MLflow's scoring protocol (``POST /invocations``): payload forms in, ``predictions`` out.

Accepted bodies, as ``mlflow models serve`` takes them:

- ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}`` (``columns`` may be
  left out: the values are then in the model's column order);
- ``{"dataframe_records": [{"col": value, ...}, ...]}``;
- ``{"instances": ...}`` or ``{"inputs": ...}``: row objects, row arrays in the model's
  column order, or one object of columns (``{"col": [v1, v2], ...}``);
- ``text/csv`` with a header row.

An optional ``params`` object is accepted and ignored (the pipeline takes none). The
answer is ``{"predictions": [...]}``; with ``?probabilities=true`` a classifier adds
``"probabilities"`` (one list per row) and ``"classes"`` (their order). Errors use
MLflow's body ``{"error_code": ..., "message": ...}``.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from conveyor.serving.inputs import (
    InputSchema,
    RawColumns,
    RequestError,
    check_columns,
    check_row_limit,
    columns_from_records,
    columns_from_rows,
)
from conveyor.serving.slot import ModelSlot, Prediction

__all__ = [
    "INPUT_FIELDS",
    "error_body",
    "parse_csv",
    "parse_payload",
    "predictions_body",
]

INPUT_FIELDS = ("dataframe_split", "dataframe_records", "instances", "inputs")
IGNORED_FIELDS = ("params",)

_ERROR_CODES = {
    400: "MALFORMED_REQUEST",
    404: "RESOURCE_DOES_NOT_EXIST",
    413: "REQUEST_LIMIT_EXCEEDED",
    415: "BAD_REQUEST",
    422: "INVALID_PARAMETER_VALUE",
}


def error_body(status: int, message: str) -> dict[str, str]:
    """MLflow's error body for a status and a message."""
    default = "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR"
    return {"error_code": _ERROR_CODES.get(status, default), "message": message}


def parse_payload(payload: Any, schema: InputSchema, *, max_rows: int) -> RawColumns:
    """Raw columns from a decoded JSON body in any of the four forms.

    Args:
        payload: the decoded JSON.
        schema: the model's input columns (for row arrays and duplicate checks).
        max_rows: the batch row limit, checked on the lists' lengths before any column is
            built.

    Returns:
        Column name -> values.

    Raises:
        RequestError: (400) not an object, no form or several forms, unknown fields, or a
            form of the wrong shape; (422) a row of the wrong length, or more rows than
            ``max_rows``.
    """
    if not isinstance(payload, dict):
        raise RequestError(f"the JSON body must be an object with one of: {_fields()}", status=400)
    unknown = [k for k in payload if k not in INPUT_FIELDS + IGNORED_FIELDS]
    if unknown:
        raise RequestError(f"unknown field {unknown[0]!r}; expected one of: {_fields()}", 400)
    given = [k for k in INPUT_FIELDS if k in payload]
    if len(given) != 1:
        found = ", ".join(repr(k) for k in given) or "none"
        raise RequestError(f"send exactly one of: {_fields()} (found {found})", status=400)
    field = given[0]
    value = payload[field]
    if field == "dataframe_split":
        return _split(value, schema, max_rows=max_rows)
    if isinstance(value, list):
        check_row_limit(len(value), max_rows)
    if field == "dataframe_records":
        return columns_from_records(value, field=field)
    return _tensor_form(value, schema, field=field, max_rows=max_rows)


def _fields() -> str:
    return ", ".join(repr(f) for f in INPUT_FIELDS)


def _split(value: Any, schema: InputSchema, *, max_rows: int) -> RawColumns:
    if not isinstance(value, dict) or "data" not in value:
        raise RequestError("'dataframe_split' must be an object with 'columns' and 'data'", 400)
    unknown = [k for k in value if k not in ("columns", "data", "index")]
    if unknown:
        raise RequestError(f"unknown field 'dataframe_split.{unknown[0]}'", status=400)
    columns = value.get("columns", list(schema.names))
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise RequestError("'dataframe_split.columns' must be a list of column names", 400)
    check_columns(schema, columns)
    if isinstance(value["data"], list):
        check_row_limit(len(value["data"]), max_rows)
    return columns_from_rows(value["data"], columns, field="dataframe_split.data")


def _tensor_form(value: Any, schema: InputSchema, *, field: str, max_rows: int) -> RawColumns:
    if isinstance(value, dict):
        for name, values in value.items():
            if not isinstance(values, list):
                raise RequestError(f"{field!r} column {name!r} must be a list of values", 400)
            check_row_limit(len(values), max_rows)
        return dict(value)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return columns_from_records(value, field=field)
    if isinstance(value, list):
        return columns_from_rows(value, schema.names, field=field)
    raise RequestError(
        f"{field!r} must be a list of rows (objects or lists) or an object of columns", 400
    )


def parse_csv(text: str, schema: InputSchema, *, max_rows: int) -> RawColumns:
    """Raw text columns from a CSV body whose first row names the columns.

    Args:
        text: the body.
        schema: the model's input columns.
        max_rows: the batch row limit: reading stops at the first row over it.

    Raises:
        RequestError: (400) unparsable CSV; (422) no header, missing/extra columns, a
            row with the wrong number of fields, or more rows than ``max_rows``.
    """
    rows: list[list[str]] = []
    try:
        for row in csv.reader(io.StringIO(text, newline="")):
            if row:
                rows.append(row)
                check_row_limit(len(rows) - 1, max_rows, at_least=True)  # the header is no row
    except csv.Error as exc:
        raise RequestError(f"malformed CSV: {exc}", status=400) from exc
    if not rows:
        raise RequestError("empty batch: the CSV body has no header and no rows")
    header = [name.strip() for name in rows[0]]
    check_columns(schema, header)
    return columns_from_rows(rows[1:], header, field="csv")


def predictions_body(slot: ModelSlot, prediction: Prediction) -> dict[str, Any]:
    """The JSON answer: ``predictions``, plus ``probabilities`` and ``classes`` if computed."""
    body: dict[str, Any] = {"predictions": prediction.predictions}
    if prediction.probabilities is not None:
        body["probabilities"] = prediction.probabilities
        body["classes"] = list(slot.classes)
    return body
