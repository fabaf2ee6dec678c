"""Parse text columns into numbers and date/times, one distinct value at a time."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, NamedTuple

from conveyor.errors import DataError
from conveyor_cleaning.values import parse_number

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

__all__ = [
    "DATETIME_PARSE_SHARE",
    "NUMERIC_PARSE_SHARE",
    "Uniques",
    "factorize",
    "parse_datetimes",
    "parse_numbers",
]

# A text column becomes numeric when at least this share of its non-missing values parse;
# the rest become missing (and are logged).
NUMERIC_PARSE_SHARE = 0.99
# A text column is inferred to be a date/time when this share of its values parse.
DATETIME_PARSE_SHARE = 0.95
# How many distinct values to try before parsing a whole column as numbers.
_PROBE = 200

_LEADING_ZERO = r"[+-]?0\d"  # "007", "01234": codes, not numbers


class Uniques(NamedTuple):
    """A column factorised once: row codes (-1 = missing), distinct values, their counts."""

    codes: npt.NDArray[np.intp]
    values: pd.Series
    counts: npt.NDArray[np.intp]


def factorize(s: pd.Series) -> Uniques:
    """Factorise a column once, so each distinct value is parsed only once.

    Args:
        s: the column (any dtype; missing values get code -1).

    Returns:
        The row codes, the distinct values as stripped strings and how many rows hold each.
    """
    import numpy as np
    import pandas as pd

    codes, values = pd.factorize(s)
    counts = np.bincount(codes[codes >= 0], minlength=len(values))
    return Uniques(codes, pd.Series(values, dtype="str").str.strip(), counts)


def parse_numbers(
    uniques: Uniques, *, probe: bool
) -> tuple[npt.NDArray[np.float64] | None, int, str | None]:
    """Row values parsed as numbers, rows that failed, an example failure.

    Thousands separators (``"1,234.5"``) are accepted.

    Args:
        uniques: the column, as ``factorize`` returns it.
        probe: first check that the column looks numeric at all, and give up early when
            it does not.

    Returns:
        ``(values, bad_rows, example)``: one float per row (``NaN`` for missing or
        unparsable), the number of rows that did not parse and one such value.
        ``values`` is None when probing shows the column is clearly not numeric: few of
        its first distinct values parse, or values with leading zeros show it holds codes.
    """
    import numpy as np

    text = uniques.values
    if text.empty:
        return None, 0, None
    if probe:
        head = [parse_number(v) for v in text.iloc[:_PROBE].tolist()]
        parsed_share = sum(v is not None for v in head) / len(head)
        if parsed_share < 0.5 or text.str.match(_LEADING_ZERO).any():
            return None, 0, None
    numbers = [parse_number(v) for v in text.tolist()]
    parsed = np.array([np.nan if v is None else v for v in numbers], dtype="float64")
    bad = np.array([v is None for v in numbers], dtype=bool)
    example = str(text[bad].iloc[0]) if bad.any() else None
    bad_rows = int(uniques.counts[bad].sum())
    return _take(parsed, uniques.codes, np.nan), bad_rows, example


def parse_datetimes(uniques: Uniques, name: str, *, forced: bool) -> pd.Series | None:
    """The column as datetime64 when its values look like dates (always, when forced).

    Args:
        uniques: the column, as ``factorize`` returns it.
        name: the column name, for the result and for error messages.
        forced: the config forces this column to be a date/time.

    Returns:
        One date/time per row (``NaT`` for missing or unparsable), named ``name``; None
        when the column does not look like dates and is not forced.

    Raises:
        DataError: the column is forced date/time but its values do not parse.
    """
    import pandas as pd

    text = uniques.values
    if text.empty:
        return None
    fmt = _date_format(str(text.iloc[0]))
    if fmt is None and not forced:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(text, format=fmt or "mixed", errors="coerce")
    except (ValueError, TypeError) as exc:
        if forced:
            raise DataError(f"column {name!r} cannot be parsed as date/time: {exc}") from exc
        return None
    bad = parsed.isna().to_numpy()
    total = int(uniques.counts.sum())
    bad_rows = int(uniques.counts[bad].sum())
    if bad_rows > (1 - DATETIME_PARSE_SHARE) * total:
        if forced:
            example = text[bad].iloc[0]
            raise DataError(
                f"column {name!r} is forced date/time but {bad_rows} of {total} values do not"
                f" parse (e.g. {example!r})"
            )
        return None
    values = parsed.array.take(uniques.codes, allow_fill=True)
    return pd.Series(values, name=name)


def _date_format(value: str) -> str | None:
    """The strftime format of a date-like string with a year and a month, else None."""
    from pandas.tseries.api import guess_datetime_format

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "dayfirst" hints are noise here
        fmt = guess_datetime_format(value)
    if fmt is None or not any(y in fmt for y in ("%Y", "%y")):
        return None
    return fmt if any(m in fmt for m in ("%m", "%b", "%B")) else None


def _take(
    values: npt.NDArray[np.float64], codes: npt.NDArray[np.intp], missing: float
) -> npt.NDArray[np.float64]:
    """Distinct values spread back over rows; code -1 gives ``missing``."""
    import numpy as np

    result: npt.NDArray[np.float64] = np.append(values, missing)[codes]
    return result
