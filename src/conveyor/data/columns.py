"""One feature column cleaned: its type (numeric, categorical, date/time) and its signal.

Text columns are tried as numbers, then as date/times, else kept as categories; a type
forced by the config must fit. A column that carries no usable signal (constant, or
ID-like: unique integers named like an ID, an integer sequence, unique categories) is
dropped by :func:`conveyor.data.cleaning.clean_table` with the reason
:func:`drop_reason` gives.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from conveyor.data.coercion import (
    NUMERIC_PARSE_SHARE,
    Uniques,
    factorize,
    parse_datetimes,
    parse_numbers,
)
from conveyor.errors import DataError
from conveyor_cleaning.values import (
    DATE_CATEGORY_FORMAT,
    ValueRules,
    clean_categories,
    clean_numbers,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

__all__ = ["Feature", "Kind", "clean_feature", "drop_reason", "is_text"]

logger = logging.getLogger(__name__)

Kind = Literal["numeric", "categorical", "datetime"]

_ID_CAMEL = re.compile(r"[a-z](Id|ID)$")
_ID_SNAKE = re.compile(r"(^|[^A-Za-z])(id|uuid|guid)$", re.IGNORECASE)


@dataclass
class Feature:
    """One cleaned feature column and how it got there."""

    series: pd.Series
    kind: Kind
    markers: int = 0
    coerced: bool = False
    parsed: bool = False
    uniques: Uniques | None = None
    integer: bool = False  # stored as integers at the source (an ID sequence candidate)


# --- types ----------------------------------------------------------------------------


def clean_feature(s: pd.Series, name: str, forced: Kind | None, options: ValueRules) -> Feature:
    """Clean one feature column into numeric, categorical or datetime form."""
    import pandas as pd

    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)
    ):
        return _from_numbers(s, name, forced, options)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return _from_datetimes(s, name, forced)
    if pd.api.types.is_object_dtype(dtype):
        inferred = pd.api.types.infer_dtype(s, skipna=True)
        if inferred in {"integer", "floating", "mixed-integer-float", "decimal", "boolean"}:
            numbers = s.map(float, na_action="ignore").astype("float64")
            return _from_numbers(numbers, name, forced, options)
        if inferred in {"date", "datetime", "datetime64"}:
            feature = _from_datetimes(pd.to_datetime(s), name, forced)
            feature.parsed = feature.kind == "datetime"
            return feature
    text, markers = clean_categories(s, options)
    feature = _type_text(text, name, forced)
    feature.markers = markers
    if feature.kind == "numeric" and options.numeric_markers:
        feature = _without_numeric_markers(feature, options)
    return feature


def _without_numeric_markers(feature: Feature, options: ValueRules) -> Feature:
    """Numbers parsed from text that equal a marker (``"-999.0"`` for ``-999``) are missing,
    as ``number_of`` reads them."""
    import numpy as np
    import pandas as pd

    values = feature.series.to_numpy(dtype="float64", copy=True)
    hit = np.isin(values, list(options.numeric_markers))
    if not hit.any():
        return feature
    values[hit] = np.nan
    feature.series = pd.Series(values, name=feature.series.name)
    feature.markers += int(hit.sum())
    return feature


def _from_numbers(s: pd.Series, name: str, forced: Kind | None, options: ValueRules) -> Feature:
    import pandas as pd

    if forced == "categorical":
        text, markers = clean_categories(s.rename(name), options)
        return Feature(text, "categorical", markers)
    values, markers, _ = clean_numbers(s, options)
    series = pd.Series(values, name=name)
    if forced == "datetime":
        text, _ = clean_categories(series, options)
        feature = _type_text(text, name, forced)
        feature.markers = markers
        return feature
    return Feature(series, "numeric", markers, integer=pd.api.types.is_integer_dtype(s.dtype))


def _from_datetimes(s: pd.Series, name: str, forced: Kind | None) -> Feature:
    if forced == "numeric":
        raise DataError(f"column {name!r} holds dates; it cannot be forced numeric")
    if forced == "categorical":
        text = s.dt.strftime(DATE_CATEGORY_FORMAT).astype("str")
        return Feature(text.rename(name), "categorical")
    return Feature(s.rename(name), "datetime")


def is_text(s: pd.Series) -> bool:
    import pandas as pd

    if pd.api.types.is_object_dtype(s.dtype):
        return pd.api.types.infer_dtype(s, skipna=True) in {"string", "empty"}
    return bool(pd.api.types.is_string_dtype(s.dtype))


def _type_text(s: pd.Series, name: str, forced: Kind | None) -> Feature:
    """Decide whether a text column holds numbers, date/times or categories."""
    uniques = factorize(s)
    if uniques.values.empty:  # entirely missing: the caller reports it
        return Feature(s.rename(name), forced or "categorical")
    if forced in (None, "numeric"):
        values, bad_rows, example = parse_numbers(uniques, probe=forced is None)
        total = int(uniques.counts.sum())
        if forced == "numeric" and (values is None or bad_rows):
            raise DataError(
                f"column {name!r} is forced numeric but {bad_rows or total} of {total} values"
                f" are not numbers (e.g. {example!r}); add such markers to data.na_values"
            )
        if values is not None and bad_rows <= (1 - NUMERIC_PARSE_SHARE) * total:
            if bad_rows:
                logger.warning(
                    "column %r: %s non-numeric values (e.g. %r) set to missing",
                    name,
                    bad_rows,
                    example,
                )
            return Feature(_series(values, name), "numeric", coerced=True)
    if forced in (None, "datetime"):
        dates = parse_datetimes(uniques, name, forced=forced == "datetime")
        if dates is not None:
            return Feature(dates, "datetime", parsed=True)
    return Feature(s.rename(name), "categorical", uniques=uniques)


def _series(values: npt.NDArray[np.float64], name: str) -> pd.Series:
    import pandas as pd

    return pd.Series(values, name=name, dtype="float64")


# --- signal ---------------------------------------------------------------------------


def drop_reason(name: str, feature: Feature, *, forced: bool, gaps: int) -> str | None:
    """'id-like' or 'constant' when the column carries no usable signal, else None.

    ``gaps``: rows removed before this check, which may have left holes in a sequence.
    """
    if feature.kind == "datetime":
        return None
    s = feature.series
    n = len(s)
    if feature.kind == "categorical":
        uniques = feature.uniques or factorize(s)
        distinct, has_missing = len(uniques.values), bool((uniques.codes < 0).any())
        if distinct == 1 and not has_missing:
            return "constant"
        return "id-like" if distinct == n and n > 1 and not forced else None
    return _numeric_drop_reason(name, feature, forced=forced, gaps=gaps)


def _numeric_drop_reason(name: str, feature: Feature, *, forced: bool, gaps: int) -> str | None:
    """Constant; or id-like: unique integers named like an ID, or an integer sequence."""
    import numpy as np

    s = feature.series
    values = s.to_numpy(dtype="float64")
    if np.isnan(values).any():
        return None
    low, high = float(values.min()), float(values.max())
    if low == high:
        return "constant"
    n = len(values)
    if forced or n < 2 or not bool(np.all(np.mod(values, 1) == 0)):
        return None
    looks_like_id = _ID_SNAKE.search(name) is not None or _ID_CAMEL.search(name) is not None
    is_sequence = feature.integer and high - low <= n - 1 + gaps
    if not (looks_like_id or is_sequence):
        return None
    return "id-like" if s.nunique() == n else None
