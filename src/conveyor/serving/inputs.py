"""Request rows -> the model's input frame: column checks, type coercion, batch limits.

Every protocol first turns its payload into *raw columns* (column name -> list of JSON or
CSV values); this module checks them against the model's :class:`InputSchema` and builds
the pandas frame the pipeline predicts on. Anything wrong is a :class:`RequestError`
naming the column (and the row, counted from 0) and the problem.

Raw values are cleaned by the model's own value rules (``conveyor_cleaning.values``, the
rules its pipeline's first step applies and training applied): in a ``number`` column a
missing marker (``"?"``) is missing and a number written as text (``" 7 "``, ``"1,234"``)
is that number; in a ``string`` column values are stripped, markers are missing and a
number becomes its text. Columns the model dropped (ID-like, constant, configured, the
target, date/times) are accepted and ignored; booleans count 1 and 0 in a ``number``
column. Text that is no number in a ``number`` column, objects and infinite numbers are
refused. An empty CSV field is a missing value in every column. A model without value rules
(a pipeline not trained by Conveyor) gets strict JSON typing: a string in a number
column is refused.

Missing values: a ``number`` column accepts ``null``/``NaN`` (and an empty CSV field)
when the model's preprocessing imputes that column (Conveyor's pipelines impute every
numeric feature with the median); a ``string`` column accepts ``null`` only when its
branch has an imputer too.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from conveyor.errors import DataError
from conveyor_cleaning.values import ValueRules, category_of, number_of

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Batch",
    "ColumnKind",
    "InputColumn",
    "InputSchema",
    "RawColumns",
    "RequestError",
    "build_frame",
    "check_columns",
    "check_row_limit",
    "coerce_column",
    "coerce_columns",
    "columns_from_records",
    "columns_from_rows",
    "frame_of",
]

ColumnKind = Literal["number", "string"]
RawColumns = dict[str, list[Any]]
MAX_NAMES_SHOWN = 8


class RequestError(DataError):
    """A request the server cannot score; ``status`` is the HTTP status to answer with,
    ``headers`` extra response headers (``Retry-After``)."""

    def __init__(
        self, message: str, status: int = 422, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


@dataclass(frozen=True)
class InputColumn:
    """One input column of the model.

    Attributes:
        name: the column name the pipeline was fitted on.
        kind: ``"number"`` (float64) or ``"string"``.
        nullable: whether a missing value is accepted (the pipeline imputes it).
    """

    name: str
    kind: ColumnKind
    nullable: bool
    categories: frozenset[str] | None = field(default=None, compare=False, repr=False)

    @property
    def v2_datatype(self) -> str:
        """The Open Inference Protocol datatype of this column."""
        return "FP64" if self.kind == "number" else "BYTES"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"name": self.name, "type": self.kind, "nullable": self.nullable}

    def unknown(self, values: Sequence[str | None]) -> list[int]:
        """Rows whose value the model never saw in training (empty when it knows no levels)."""
        known = self.categories
        if not known:
            return []
        return [row for row, value in enumerate(values) if value is not None and value not in known]


@dataclass(frozen=True)
class Batch:
    """Rows checked and coerced to the model's columns (see :func:`coerce_columns`).

    Attributes:
        columns: column name -> values (floats with NaN for missing, or ``str``/None).
        rows: number of rows.
    """

    columns: dict[str, list[Any]]
    rows: int
    unknown: dict[str, int] = field(default_factory=dict, compare=False)

    @classmethod
    def concat(cls, batches: Sequence[Batch]) -> Batch:
        """One batch holding the rows of ``batches`` in order (same columns)."""
        if len(batches) == 1:
            return batches[0]
        names = list(batches[0].columns)
        joined: dict[str, list[Any]] = {name: [] for name in names}
        for batch in batches:
            for name in names:
                joined[name].extend(batch.columns[name])
        return cls(joined, sum(b.rows for b in batches))


@dataclass(frozen=True)
class InputSchema:
    """The model's input columns, in the order the pipeline was fitted on.

    Attributes:
        columns: the model's input columns.
        rules: the value rules raw values are cleaned with (None: strict typing).
        ignored: columns accepted and ignored (dropped by training's cleaning).
    """

    columns: tuple[InputColumn, ...]
    rules: ValueRules | None = None
    ignored: frozenset[str] = frozenset()

    @functools.cached_property
    def names(self) -> tuple[str, ...]:
        """Column names in order."""
        return tuple(c.name for c in self.columns)

    @functools.cached_property
    def _by_name(self) -> dict[str, InputColumn]:
        return {c.name: c for c in self.columns}

    def column(self, name: str) -> InputColumn | None:
        """The column called ``name``, or None."""
        return self._by_name.get(name)

    def canonical(self, names: Sequence[str]) -> list[str]:
        """Column names as the model knows them: headers stripped of spaces, as training
        stripped the table's headers (when its value rules strip)."""
        if self.rules is None or not self.rules.strip:
            return list(names)
        return [n.strip() if type(n) is str else n for n in names]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        found: dict[str, Any] = {"columns": [c.to_dict() for c in self.columns]}
        if self.rules is not None:
            found["cleaning"] = {
                "na_values": sorted(self.rules.na_values),
                "strip": self.rules.strip,
                "ignored": sorted(self.ignored),
            }
        return found


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:MAX_NAMES_SHOWN])
    return shown + (", ..." if len(names) > MAX_NAMES_SHOWN else "")


def check_columns(schema: InputSchema, names: Sequence[str]) -> None:
    """Refuse missing, unexpected and duplicated columns.

    Raises:
        RequestError: the first problem found, naming the columns.
    """
    names = schema.canonical(names)
    seen = set(names)
    if len(seen) != len(names):
        twice = next(n for i, n in enumerate(names) if n in names[:i])
        raise RequestError(f"column {twice!r} is given twice")
    if len(seen) == len(schema.columns) and all(n in seen for n in schema.names):
        return  # the usual case: exactly the model's columns
    missing = [n for n in schema.names if n not in seen]
    extra = [n for n in names if schema.column(n) is None and n not in schema.ignored]
    if missing:
        given = f" (unexpected: {_names(extra)})" if extra else ""
        raise RequestError(f"missing column(s) {_names(missing)}{given}")
    if extra:
        raise RequestError(
            f"unexpected column(s) {_names(extra)}; the model takes {_names(schema.names)}"
        )


def columns_from_records(records: Any, *, field: str) -> RawColumns:
    """Row objects (``[{"col": value, ...}, ...]``) as raw columns.

    Args:
        records: the decoded JSON value.
        field: the payload field holding it, for error messages.

    Raises:
        RequestError: not a list of objects, or rows with different columns.
    """
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise RequestError(f"{field!r} must be a list of objects (one per row)", status=400)
    if not records:
        return {}
    names = list(records[0])
    columns: RawColumns = {name: [] for name in names}
    for index, record in enumerate(records):
        if record.keys() != columns.keys():
            lacks = [n for n in names if n not in record]
            if lacks:
                raise RequestError(f"{field!r} row {index}: missing column {lacks[0]!r}")
            extra = next(n for n in record if n not in columns)
            raise RequestError(f"{field!r} row {index}: column {extra!r} is not in row 0")
        for name in names:
            columns[name].append(record[name])
    return columns


def columns_from_rows(rows: Any, names: Sequence[str], *, field: str) -> RawColumns:
    """Row arrays (``[[v1, v2, ...], ...]``) in the order of ``names`` as raw columns.

    Raises:
        RequestError: not a list of lists, or a row of the wrong length.
    """
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise RequestError(f"{field!r} must be a list of rows (lists of values)", status=400)
    columns: RawColumns = {name: [] for name in names}
    for index, row in enumerate(rows):
        if len(row) != len(names):
            raise RequestError(
                f"{field!r} row {index} has {len(row)} values; expected {len(names)} "
                f"({_names(list(names))})"
            )
        for name, value in zip(names, row, strict=True):
            columns[name].append(value)
    return columns


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    return f"a {type(value).__name__}"


def _number(
    column: InputColumn, row: int, value: Any, *, text: bool, rules: ValueRules | None
) -> float:
    number = _as_number(column, row, value, text=text, rules=rules)
    if math.isnan(number):
        if not column.nullable:
            raise RequestError(f"column {column.name!r} row {row}: missing value not allowed")
    elif math.isinf(number):
        raise RequestError(f"column {column.name!r} row {row}: infinite value not allowed")
    return number


def _as_number(
    column: InputColumn, row: int, value: Any, *, text: bool, rules: ValueRules | None
) -> float:
    """The value as a float (NaN for missing), by the model's rules when it has them."""
    kind = type(value)
    if kind is float or kind is int:
        try:
            number = float(value)
        except OverflowError as exc:
            raise RequestError(f"column {column.name!r} row {row}: number out of range") from exc
        if rules is not None and rules.numeric_markers and number in rules.numeric_markers:
            return math.nan
        return number
    if value is None or (text and kind is str and not value.strip()):
        return math.nan
    if rules is not None and (kind is str or kind is bool):  # booleans count 1 and 0
        parsed = number_of(value, rules)
        if parsed is not None:
            return parsed
    elif text and kind is str:
        try:
            return float(value)
        except ValueError:
            pass
    raise RequestError(
        f"column {column.name!r} row {row}: expected a number, got {_describe(value)}"
    )


def _check_encodable(column: InputColumn, row: int, value: str) -> None:
    """Refuse text the model's encoders cannot take: a lone surrogate (``"\\ud800"``)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RequestError(
            f"column {column.name!r} row {row}: not valid Unicode text (character"
            f" {exc.start}: a lone surrogate)"
        ) from None


def _string(
    column: InputColumn, row: int, value: Any, *, text: bool, rules: ValueRules | None
) -> str | None:
    if text and value == "":  # an empty CSV field is missing, as training reads CSV
        value = None
    if type(value) is str and not value.isascii():
        _check_encodable(column, row, value)
    if rules is not None:
        kind = type(value)
        if kind in (str, int, bool) or (kind is float and not math.isinf(value)):
            cleaned = category_of(value, rules)
            if cleaned is not None or column.nullable:
                return cleaned
            raise RequestError(f"column {column.name!r} row {row}: missing value not allowed")
    if type(value) is str and (value or not text):
        return value
    nan = type(value) is float and math.isnan(value)
    missing = value is None or nan or (text and value == "")
    if not missing:
        raise RequestError(
            f"column {column.name!r} row {row}: expected a string, got {_describe(value)}"
        )
    if not column.nullable:
        raise RequestError(f"column {column.name!r} row {row}: missing value not allowed")
    return None


def coerce_column(
    column: InputColumn,
    values: Sequence[Any],
    *,
    text: bool = False,
    rules: ValueRules | None = None,
) -> list[Any]:
    """Check, clean and convert one column's values.

    Args:
        column: the model's column.
        values: JSON values, or CSV fields when ``text``.
        text: values are text to parse (CSV); an empty field is a missing value.
        rules: the model's value rules (None: strict JSON typing).

    Returns:
        Floats (NaN for missing) for a number column, strings or None for a string column.

    Raises:
        RequestError: a value of the wrong type, missing where not allowed, or infinite.
    """
    if column.kind == "number":
        return [
            _number(column, row, value, text=text, rules=rules) for row, value in enumerate(values)
        ]
    return [_string(column, row, value, text=text, rules=rules) for row, value in enumerate(values)]


def check_row_limit(rows: int, max_rows: int, *, at_least: bool = False) -> None:
    """Refuse a batch of more than ``max_rows`` rows; protocols call it on list lengths
    while parsing, before any column is built.

    Args:
        rows: rows counted so far.
        max_rows: the batch row limit.
        at_least: counting stopped early: the batch has ``rows`` rows or more.

    Raises:
        RequestError: (422) over the limit (the message names it).
    """
    if rows > max_rows:
        counted = f"more than {max_rows}" if at_least else str(rows)
        raise RequestError(
            f"batch of {counted} rows exceeds the limit of {max_rows} rows (max_batch_rows)"
        )


def _row_count(columns: RawColumns, *, max_rows: int) -> int:
    lengths = {name: len(values) for name, values in columns.items()}
    rows = max(lengths.values(), default=0)
    short = next((n for n, length in lengths.items() if length != rows), None)
    if short is not None:
        raise RequestError(f"column {short!r} has {lengths[short]} values; expected {rows}")
    if rows == 0:
        raise RequestError("empty batch: the request holds no rows")
    check_row_limit(rows, max_rows)
    return rows


def coerce_columns(
    schema: InputSchema,
    columns: RawColumns,
    *,
    max_rows: int,
    text: bool = False,
    reject_unknown: bool = False,
) -> Batch:
    """Raw columns checked and coerced into the model's columns, without pandas.

    Args:
        schema: the model's input columns.
        columns: column name -> values.
        max_rows: the batch row limit.
        text: the values are CSV text.
        reject_unknown: refuse a category value the model never saw in training (else it
            is accepted, the model's encoder maps it to its "infrequent" level, and the
            batch counts it in ``unknown``).

    Returns:
        The batch: floats (NaN for missing) for number columns, ``str`` or None for string
        columns, in the fitted order.

    Raises:
        RequestError: missing/unexpected columns, ragged columns, an empty or oversized
            batch, a bad value (see :func:`coerce_column`), or (``reject_unknown``) an
            unknown category.
    """
    if not columns:
        raise RequestError("empty batch: the request holds no rows")
    check_columns(schema, list(columns))
    names = schema.canonical(list(columns))
    if names != list(columns):
        columns = dict(zip(names, columns.values(), strict=True))
    rows = _row_count(columns, max_rows=max_rows)
    coerced: dict[str, list[Any]] = {}
    unknown: dict[str, int] = {}
    for column in schema.columns:
        values = coerce_column(column, columns[column.name], text=text, rules=schema.rules)
        coerced[column.name] = values
        if column.kind == "string" and column.categories:
            found = column.unknown(values)
            if found and reject_unknown:
                raise RequestError(_unknown_message(column, found[0], values[found[0]]))
            if found:
                unknown[column.name] = len(found)
    return Batch(coerced, rows, unknown)


def _unknown_message(column: InputColumn, row: int, value: str) -> str:
    known = sorted(column.categories or ())
    shown = ", ".join(repr(k) for k in known[:MAX_NAMES_SHOWN])
    more = f", ... ({len(known)} in all)" if len(known) > MAX_NAMES_SHOWN else ""
    return (
        f"column {column.name!r} row {row}: unknown category {value[:40]!r}; "
        f"the model knows {shown}{more}"
    )


def frame_of(schema: InputSchema, batch: Batch) -> pd.DataFrame:
    """The pipeline's input frame for a coerced batch.

    Returns:
        A frame with float64 number columns and ``str`` string columns, in schema order.
    """
    import numpy as np
    import pandas as pd

    data: dict[str, Any] = {}
    for column in schema.columns:
        values = batch.columns[column.name]
        if column.kind == "number":
            data[column.name] = np.asarray(values, dtype=np.float64)
        else:
            data[column.name] = pd.array(values, dtype="str")
    return pd.DataFrame(data)


def build_frame(
    schema: InputSchema, columns: RawColumns, *, max_rows: int, text: bool = False
) -> pd.DataFrame:
    """The pipeline's input frame from raw columns: checked, coerced, in the fitted order.

    Args:
        schema: the model's input columns.
        columns: column name -> values.
        max_rows: the batch row limit.
        text: the values are CSV text.

    Returns:
        A frame with float64 number columns and ``str`` string columns.

    Raises:
        RequestError: as :func:`coerce_columns`.
    """
    return frame_of(schema, coerce_columns(schema, columns, max_rows=max_rows, text=text))
