"""The value rules: one raw value (or one raw column) to the cleaned value a model scores.

Training, the server (both runtimes), the MLflow pyfunc model and batch scoring all clean
values with these functions, so the same raw value always becomes the same cleaned value:

- a **number**: numbers pass through (booleans count 1 / 0); text is stripped, a missing
  marker becomes NaN, ``"1,234.5"`` (thousands separators) and ``"7"`` parse; a number
  listed as a marker (``-999``) becomes NaN; text that is no number is *unparsable*;
- a **category**: text is stripped (when configured) and a missing marker becomes
  missing; a number becomes its text, integers without a decimal part (``3.0`` -> ``"3"``).

A column is cleaned one distinct value at a time (``pandas.factorize``), so the column
rules are the value rules by construction, at the cost of one Python call per distinct
value.
"""

from __future__ import annotations

import datetime
import decimal
import math
import numbers
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

__all__ = [
    "DATE_CATEGORY_FORMAT",
    "UNPARSABLE",
    "ValueRules",
    "category_of",
    "clean_categories",
    "clean_numbers",
    "number_of",
    "numbers_by_row",
    "parse_number",
]

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_BOOLEANS = {"true": 1.0, "false": 0.0}

DATE_CATEGORY_FORMAT = "%Y-%m-%dT%H:%M:%S"
"""How a date or time is written when it is used as a category."""

UNPARSABLE = None
"""What :func:`number_of` returns for text that is no number and no marker."""


@dataclass(frozen=True)
class ValueRules:
    """How raw values are read.

    Attributes:
        na_values: text values that mean "missing" (compared after stripping spaces).
        strip: strip spaces from category values.
    """

    na_values: frozenset[str] = frozenset()
    strip: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "na_values", frozenset(v.strip() for v in self.na_values))
        markers = []
        for value in self.na_values:
            number = parse_number(value)
            if number is not None and not math.isnan(number):
                markers.append(number)
        object.__setattr__(self, "_numeric_markers", frozenset(markers))

    @property
    def numeric_markers(self) -> frozenset[float]:
        """Markers that are numbers (``-999``): a number equal to one is missing."""
        markers: frozenset[float] = self.__dict__["_numeric_markers"]
        return markers


def parse_number(text: str) -> float | None:
    """A number written as text (``" 7 "``, ``"-1.5e3"``, ``"1,234.5"``, ``"true"``), or None.

    ``true``/``false`` (any case) are 1 and 0, as a CSV reader types a boolean column and
    training turns booleans into numbers. Python's own ``float`` would also take
    ``"nan"``, ``"inf"`` and ``"1_000"``; those are not numbers in a table.
    """
    text = text.strip()
    if _NUMBER.fullmatch(text):
        return float(text)
    if _THOUSANDS.fullmatch(text):
        return float(text.replace(",", ""))
    return _BOOLEANS.get(text.lower())


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # noqa: PLR0124  NaN, NaT, pandas.NA compare unequal to themselves
    except (TypeError, ValueError):  # pandas.NA refuses bool()
        return True


def number_of(value: Any, rules: ValueRules) -> float | None:
    """One raw value as a number: NaN for missing, None (:data:`UNPARSABLE`) for text
    that is no number.

    Args:
        value: a JSON, CSV, pandas or numpy value.
        rules: the model's value rules.

    Returns:
        The float (NaN when missing or a marker), or None when the value cannot be one.
    """
    if isinstance(value, str):
        text = value.strip()
        if text in rules.na_values:
            return math.nan
        number = parse_number(text)
        if number is None:
            return UNPARSABLE
    elif _is_missing(value):
        return math.nan
    else:
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            return UNPARSABLE
    return math.nan if number in rules.numeric_markers else number


def category_of(value: Any, rules: ValueRules) -> str | None:
    """One raw value as a category: its text (stripped when configured), None for missing.

    Args:
        value: a JSON, CSV, pandas or numpy value.
        rules: the model's value rules.

    Returns:
        The category, or None for a missing value or a marker.
    """
    if isinstance(value, str):
        text = value.strip()
        if text in rules.na_values:
            return None
        return text if rules.strip else value
    return None if _is_missing(value) else _typed_category(value, rules)


def _typed_category(value: Any, rules: ValueRules) -> str | None:
    """A value that is not text as a category."""
    if isinstance(value, bool) or type(value) is np_bool():
        return "1" if value else "0"
    if isinstance(value, datetime.date | np_datetime()):
        return _date_category(value)
    if isinstance(value, numbers.Real | decimal.Decimal):
        return _number_category(value, rules)
    return str(value)


def _number_category(value: Any, rules: ValueRules) -> str | None:
    """A number as a category: ``3.0`` -> ``"3"``, ``2.5`` -> ``"2.5"``; a marker -> None.

    Integers keep every digit (an ID-like code of 17 digits is not rounded through float).
    """
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return str(value)
    if number in rules.numeric_markers:
        return None
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if number.is_integer():
        return str(int(number))
    return repr(number) if math.isfinite(number) else str(value)


def _date_category(value: Any) -> str:
    """A date or time as a category, written as training writes date columns used as
    categories (``2024-01-01T00:00:00``)."""
    import pandas as pd

    return str(pd.Timestamp(value).strftime(DATE_CATEGORY_FORMAT))


def np_bool() -> type:
    """numpy's boolean scalar type (imported lazily)."""
    import numpy as np

    return np.bool_


def np_datetime() -> type:
    """numpy's datetime64 scalar type (imported lazily)."""
    import numpy as np

    return np.datetime64


def clean_numbers(s: pd.Series, rules: ValueRules) -> tuple[npt.NDArray[np.float64], int, int]:
    """A raw column as float64 numbers (NaN for missing).

    Args:
        s: the column, of any dtype.
        rules: the model's value rules.

    Returns:
        ``(values, markers, unparsable)``: the numbers, how many values were missing
        markers and how many were text that is no number (both NaN in ``values``).
    """
    values, marker_rows, bad_rows = numbers_by_row(s, rules)
    return values, int(marker_rows.sum()), int(bad_rows.sum())


def numbers_by_row(
    s: pd.Series, rules: ValueRules
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """A raw column as float64 numbers, with the rows that were markers or unparsable.

    Args:
        s: the column, of any dtype.
        rules: the model's value rules.

    Returns:
        ``(values, markers, unparsable)``: the numbers (NaN for missing, markers and
        unparsable text) and two boolean row masks.
    """
    import numpy as np
    import pandas as pd

    if pd.api.types.is_numeric_dtype(s.dtype) and not isinstance(s.dtype, pd.CategoricalDtype):
        values = s.to_numpy(dtype="float64", na_value=np.nan, copy=True)
        hit = np.zeros(len(values), dtype=bool)
        if rules.numeric_markers:
            hit = np.isin(values, list(rules.numeric_markers))
            values[hit] = np.nan
        return values, hit, np.zeros(len(values), dtype=bool)
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    raw = uniques.tolist()
    parsed = [number_of(v, rules) for v in raw]
    table = np.array([np.nan if p is None else p for p in parsed] + [np.nan], dtype="float64")
    is_marker = np.array([_is_marker(v, rules) for v in raw] + [False], dtype=bool)
    bad = np.array([p is None for p in parsed] + [False], dtype=bool)
    return table[codes], is_marker[codes], bad[codes]


def _is_marker(value: Any, rules: ValueRules) -> bool:
    if isinstance(value, str):
        return value.strip() in rules.na_values
    try:
        return float(value) in rules.numeric_markers
    except (TypeError, ValueError):
        return False


def clean_categories(s: pd.Series, rules: ValueRules) -> tuple[pd.Series, int]:
    """A raw column as categories: pandas ``str`` dtype, NaN for missing.

    Args:
        s: the column, of any dtype.
        rules: the model's value rules.

    Returns:
        The cleaned column (same name and length) and how many values were markers.
    """
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    raw = uniques.tolist()
    cleaned = [category_of(v, rules) for v in raw]
    counts = np.bincount(codes[codes >= 0], minlength=len(raw))
    hit = np.array([c is None for c in cleaned], dtype=bool)  # codes -1 are not counted
    markers = int(counts[hit].sum()) if len(counts) else 0
    table = pd.array([*cleaned, None], dtype="str")
    values = table.take(codes)  # code -1 takes the trailing missing value
    return pd.Series(values, name=s.name, index=s.index), markers
