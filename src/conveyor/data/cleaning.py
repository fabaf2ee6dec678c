"""Clean a raw table: headers, stray spaces, missing markers, types, IDs, missing targets.

Output representation (chosen so scikit-learn's ``SimpleImputer`` and ``OneHotEncoder``
accept it without warnings under pandas 3.1, and so it converts to ONNX/JSON plainly):

- numeric features: ``float64`` with ``NaN`` for missing;
- categorical features: pandas ``str`` dtype (pandas 3's default string dtype) with
  ``NaN`` for missing. It is what a Parquet round trip (DVC-versioned data) gives back,
  it avoids a costly conversion to Python objects, and ``SimpleImputer`` /
  ``OneHotEncoder`` accept it without warnings (tested in tests/unit/data);
- date/time columns: ``datetime64`` (not features; used for time splits);
- the target: stripped strings (``str`` dtype), or numbers when every value is numeric.

Marker counts in the report refer to the rows kept (rows without a target are removed
first), except the target's own count, which refers to every row read.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from conveyor.data.coercion import (
    NUMERIC_PARSE_SHARE,
    Uniques,
    factorize,
    parse_datetimes,
    parse_numbers,
)
from conveyor.data.schema import TableSchema
from conveyor.data.sources import RENAMED_COLUMNS_ATTR
from conveyor.errors import DataError
from conveyor_cleaning.values import (
    DATE_CATEGORY_FORMAT,
    ValueRules,
    clean_categories,
    clean_numbers,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    import numpy as np
    import numpy.typing as npt
    import pandas as pd

    from conveyor.config import DataConfig

__all__ = ["CleaningReport", "clean_table", "raw_sample", "value_cleaner"]

logger = logging.getLogger(__name__)

Kind = Literal["numeric", "categorical", "datetime"]

_ID_CAMEL = re.compile(r"[a-z](Id|ID)$")
_ID_SNAKE = re.compile(r"(^|[^A-Za-z])(id|uuid|guid)$", re.IGNORECASE)


@dataclass(frozen=True)
class CleaningReport:
    """What cleaning changed, for the run record.

    Attributes:
        rows_in: rows read.
        rows_out: rows kept.
        rows_without_target: rows dropped because their target was missing.
        renamed_columns: original header -> stripped header.
        missing_markers: column -> values turned into NaN by ``data.na_values``.
        coerced_numeric: text columns converted to numbers.
        parsed_datetime: columns parsed as date/time from text or date objects.
        dropped: column -> reason (``"configured"``, ``"id-like"``, ``"constant"``).
    """

    rows_in: int
    rows_out: int
    rows_without_target: int
    renamed_columns: dict[str, str] = field(default_factory=dict)
    missing_markers: dict[str, int] = field(default_factory=dict)
    coerced_numeric: tuple[str, ...] = ()
    parsed_datetime: tuple[str, ...] = ()
    dropped: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rows_without_target": self.rows_without_target,
            "renamed_columns": dict(self.renamed_columns),
            "missing_markers": dict(self.missing_markers),
            "coerced_numeric": list(self.coerced_numeric),
            "parsed_datetime": list(self.parsed_datetime),
            "dropped": dict(self.dropped),
        }


@dataclass
class _Feature:
    """One cleaned feature column and how it got there."""

    series: pd.Series
    kind: Kind
    markers: int = 0
    coerced: bool = False
    parsed: bool = False
    uniques: Uniques | None = None
    integer: bool = False  # stored as integers at the source (an ID sequence candidate)


def clean_table(
    df: pd.DataFrame, config: DataConfig
) -> tuple[pd.DataFrame, TableSchema, CleaningReport]:
    """Clean a raw table and learn its column roles.

    Args:
        df: the raw table, as ``read_table`` returns it (or any DataFrame).
        config: the ``data`` section: target, na_values, strip_whitespace, drop_columns,
            drop_id_columns and the forced column types.

    Returns:
        The cleaned frame (target kept, rows without a target removed), its schema and a
        report of what changed.

    Raises:
        DataError: the target column is absent or entirely missing, a configured column is
            unknown, a feature column is entirely missing, a forced type does not fit, or no
            feature column is left.

    Example:
        >>> clean, schema, report = clean_table(raw, config.data)
        >>> schema.features
        ('age', 'income', 'plan')
    """
    rows_in = len(df)
    if rows_in == 0:
        raise DataError("the table has no rows")
    df, renamed = _tidy_headers(df, strip=config.strip_whitespace)
    _require_target(df, config.target)
    dropped = dict.fromkeys(_known(df, config.drop_columns, "drop_columns"), "configured")
    if config.target in dropped:
        raise DataError(f"data.drop_columns lists the target column {config.target!r}")
    df = df.drop(columns=list(dropped))
    forced = _forced_kinds(df, config)
    options = _options(config)
    df, y, target_markers = _rows_with_target(df, config.target, options)
    outcome = _Outcome(dropped=dropped)
    if target_markers:
        outcome.markers[config.target] = target_markers
    for name in df.columns:
        if name == config.target:
            outcome.columns[name] = _finish_target(y)
        else:
            feature = _clean_feature(df[name], name, forced.get(name), options)
            gaps = rows_in - len(df)  # unlabelled rows removed: holes in an ID sequence
            reason = (
                _drop_reason(name, feature, forced=name in forced, gaps=gaps)
                if config.drop_id_columns
                else None
            )
            outcome.add(name, feature, drop=reason)
    schema = outcome.schema(config.target)
    report = CleaningReport(
        rows_in=rows_in,
        rows_out=len(df),
        rows_without_target=rows_in - len(df),
        renamed_columns=renamed,
        missing_markers=outcome.markers,
        coerced_numeric=tuple(outcome.coerced),
        parsed_datetime=tuple(outcome.parsed),
        dropped=dict(outcome.dropped),
    )
    _log_report(report, schema)
    return _assemble(outcome.columns), schema, report


@dataclass
class _Outcome:
    """What the column loop keeps, drops and notices."""

    dropped: dict[str, str]
    columns: dict[str, pd.Series] = field(default_factory=dict)
    kinds: dict[str, Kind] = field(default_factory=dict)
    markers: dict[str, int] = field(default_factory=dict)
    coerced: list[str] = field(default_factory=list)
    parsed: list[str] = field(default_factory=list)

    def add(self, name: str, feature: _Feature, *, drop: str | None) -> None:
        if feature.markers:
            self.markers[name] = feature.markers
        if feature.series.isna().all():
            raise DataError(
                f"column {name!r} is entirely missing (all {len(feature.series)} values null);"
                " drop it with data.drop_columns"
            )
        if drop:
            self.dropped[name] = drop
            return
        self.coerced += [name] if feature.coerced else []
        self.parsed += [name] if feature.parsed else []
        self.columns[name] = feature.series
        self.kinds[name] = feature.kind

    def schema(self, target: str) -> TableSchema:
        schema = TableSchema(
            target=target,
            numeric=tuple(n for n, k in self.kinds.items() if k == "numeric"),
            categorical=tuple(n for n, k in self.kinds.items() if k == "categorical"),
            datetime=tuple(n for n, k in self.kinds.items() if k == "datetime"),
            dropped=dict(self.dropped),
        )
        if not schema.features:
            gone = ", ".join(f"{n} ({r})" for n, r in self.dropped.items()) or "none"
            raise DataError(f"no feature columns left after cleaning (dropped: {gone})")
        return schema


def value_cleaner(
    schema: TableSchema,
    *,
    na_values: Iterable[str] | None = None,
    strip: bool = True,
    renamed: dict[str, str] | None = None,
) -> Any:
    """The pipeline step that cleans raw values as :func:`clean_table` did.

    Every registered pipeline starts with it, so every scoring path (server, MLflow
    pyfunc, batch scoring) turns a raw row into the values training saw.

    Args:
        schema: the cleaned table's column roles.
        na_values: the missing markers (``data.na_values``; default: the config default).
        strip: strip spaces from category values (``data.strip_whitespace``).
        renamed: raw header -> stripped header, from the cleaning report.

    Returns:
        An unfitted ``conveyor_cleaning.cleaner.ValueCleaner``.
    """
    from conveyor.config import DEFAULT_NA_VALUES
    from conveyor_cleaning.cleaner import ValueCleaner

    ignored = [schema.target, *schema.dropped, *schema.datetime]
    return ValueCleaner(
        numeric=tuple(schema.numeric),
        categorical=tuple(schema.categorical),
        na_values=tuple(sorted(set(DEFAULT_NA_VALUES if na_values is None else na_values))),
        strip=strip,
        ignored=tuple(dict.fromkeys(n for n in ignored if n not in schema.features)),
        renamed={k: v for k, v in (renamed or {}).items() if k != v},
    )


def raw_sample(df: pd.DataFrame, *, rows: int = 100, strip: bool = True) -> pd.DataFrame:
    """The first rows of a raw table with its own column types, for the model signature.

    Headers are tidied as :func:`clean_table` tidies them; values are left raw, except
    that object columns become numbers (decimals) or text, so the sample stores as Parquet.

    Args:
        df: the raw table, as ``read_table`` returns it.
        rows: how many rows to keep.
        strip: strip spaces from header names (``data.strip_whitespace``).

    Returns:
        The sample; its dtypes are the whole table's (``int64`` only where no value is missing).
    """
    import pandas as pd

    sample, _ = _tidy_headers(df.head(rows), strip=strip)
    sample = sample.reset_index(drop=True)
    sample.attrs = {}
    for name in sample.columns:
        column = sample[name]
        if not pd.api.types.is_object_dtype(column.dtype):
            continue
        inferred = pd.api.types.infer_dtype(column, skipna=True)
        if inferred in {"integer", "floating", "mixed-integer-float", "decimal"}:
            sample[name] = column.map(float, na_action="ignore").astype("float64")
        elif inferred == "boolean":
            sample[name] = column.astype("boolean")
        else:
            sample[name] = column.map(str, na_action="ignore").astype("str")
    return sample


# --- headers and configuration ----------------------------------------------------------


def _tidy_headers(df: pd.DataFrame, *, strip: bool) -> tuple[pd.DataFrame, dict[str, str]]:
    """String header names, stripped; {original: stripped}, including read_table's renames."""
    renamed: dict[str, str] = dict(df.attrs.get(RENAMED_COLUMNS_ATTR, {}))
    names = [str(c) for c in df.columns]
    new = [n.strip() for n in names] if strip else names
    renamed.update({old: n for old, n in zip(names, new, strict=True) if old != n})
    if len(set(new)) != len(new):
        dupe = next(n for n in new if new.count(n) > 1)
        raise DataError(f"duplicate column name {dupe!r} (after stripping spaces)")
    if new != list(df.columns):
        df = df.set_axis(new, axis="columns")
    return df, renamed


def _require_target(df: pd.DataFrame, target: str) -> None:
    if target in df.columns:
        return
    raise DataError(f"target column {target!r} not found{_suggest(target, df.columns)}")


def _known(df: pd.DataFrame, names: Iterable[str] | None, key: str) -> list[str]:
    """The configured column names, each checked to exist."""
    found = []
    for name in names or ():
        if name not in df.columns:
            raise DataError(f"data.{key}: unknown column {name!r}{_suggest(name, df.columns)}")
        found.append(name)
    return found


def _suggest(name: str, columns: Iterable[Any]) -> str:
    """'; did you mean ...? (columns: a, b, ...)' for an unknown column name."""
    available = [str(c) for c in columns]
    close = difflib.get_close_matches(name, available, n=3, cutoff=0.6)
    lower = [c for c in available if c.lower() == name.strip().lower() and c not in close]
    close = lower + close
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    shown = ", ".join(available[:8]) + (", ..." if len(available) > 8 else "")
    return f"{hint} (columns: {shown})"


def _forced_kinds(df: pd.DataFrame, config: DataConfig) -> dict[str, Kind]:
    """Column -> the type the config forces on it; one type per column, never the target."""
    forced: dict[str, Kind] = {}
    lists: tuple[tuple[str, list[str] | None, Kind], ...] = (
        ("numeric_columns", config.numeric_columns, "numeric"),
        ("categorical_columns", config.categorical_columns, "categorical"),
        ("datetime_columns", config.datetime_columns, "datetime"),
    )
    for key, names, kind in lists:
        for name in _known(df, names, key):
            if name == config.target:
                raise DataError(f"data.{key} lists the target column {name!r}")
            if forced.get(name, kind) != kind:
                raise DataError(f"column {name!r} is forced both {forced[name]} and {kind}")
            forced[name] = kind
    return forced


def _options(config: DataConfig) -> ValueRules:
    """The value rules of ``config`` (the same rules travel with the model)."""
    return ValueRules(frozenset(config.na_values), config.strip_whitespace)


# --- target -----------------------------------------------------------------------------


def _rows_with_target(
    df: pd.DataFrame, target: str, options: ValueRules
) -> tuple[pd.DataFrame, pd.Series, int]:
    """Rows whose target is present, that target cleaned, and its marker count."""
    y, markers = _clean_target_values(df[target], options)
    keep = y.notna().to_numpy()
    if not keep.any():
        raise DataError(f"target column {target!r} is entirely missing (all {len(df)} values null)")
    if keep.all():
        return df, y, markers
    return df.loc[keep].reset_index(drop=True), y.loc[keep].reset_index(drop=True), markers


def _clean_target_values(y: pd.Series, options: ValueRules) -> tuple[pd.Series, int]:
    """The target with strings stripped and markers missing; the number of markers."""
    import pandas as pd

    if _is_text(y):
        return clean_categories(y, options)
    if pd.api.types.is_object_dtype(y.dtype):
        inferred = pd.api.types.infer_dtype(y, skipna=True)
        if inferred in {"integer", "floating", "mixed-integer-float", "decimal"}:
            return pd.to_numeric(y), 0
    return y, 0


def _finish_target(y: pd.Series) -> pd.Series:
    """Numbers when every target value is one (integers kept integral), else the strings."""
    import numpy as np
    import pandas as pd

    if not _is_text(y):
        return y
    uniques = factorize(y)
    values, bad_rows, _ = parse_numbers(uniques, probe=False)
    if values is None or bad_rows:
        return y
    numbers = pd.Series(values, name=y.name)
    if bool(np.all(np.mod(values, 1) == 0)):
        return numbers.astype("int64")
    return numbers


# --- features ---------------------------------------------------------------------------


def _clean_feature(s: pd.Series, name: str, forced: Kind | None, options: ValueRules) -> _Feature:
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


def _without_numeric_markers(feature: _Feature, options: ValueRules) -> _Feature:
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


def _from_numbers(s: pd.Series, name: str, forced: Kind | None, options: ValueRules) -> _Feature:
    import pandas as pd

    if forced == "categorical":
        text, markers = clean_categories(s.rename(name), options)
        return _Feature(text, "categorical", markers)
    values, markers, _ = clean_numbers(s, options)
    series = pd.Series(values, name=name)
    if forced == "datetime":
        text, _ = clean_categories(series, options)
        feature = _type_text(text, name, forced)
        feature.markers = markers
        return feature
    return _Feature(series, "numeric", markers, integer=pd.api.types.is_integer_dtype(s.dtype))


def _from_datetimes(s: pd.Series, name: str, forced: Kind | None) -> _Feature:
    if forced == "numeric":
        raise DataError(f"column {name!r} holds dates; it cannot be forced numeric")
    if forced == "categorical":
        text = s.dt.strftime(DATE_CATEGORY_FORMAT).astype("str")
        return _Feature(text.rename(name), "categorical")
    return _Feature(s.rename(name), "datetime")


def _is_text(s: pd.Series) -> bool:
    import pandas as pd

    if pd.api.types.is_object_dtype(s.dtype):
        return pd.api.types.infer_dtype(s, skipna=True) in {"string", "empty"}
    return bool(pd.api.types.is_string_dtype(s.dtype))


def _type_text(s: pd.Series, name: str, forced: Kind | None) -> _Feature:
    """Decide whether a text column holds numbers, date/times or categories."""
    uniques = factorize(s)
    if uniques.values.empty:  # entirely missing: the caller reports it
        return _Feature(s.rename(name), forced or "categorical")
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
            return _Feature(_series(values, name), "numeric", coerced=True)
    if forced in (None, "datetime"):
        dates = parse_datetimes(uniques, name, forced=forced == "datetime")
        if dates is not None:
            return _Feature(dates, "datetime", parsed=True)
    return _Feature(s.rename(name), "categorical", uniques=uniques)


def _series(values: npt.NDArray[np.float64], name: str) -> pd.Series:
    import pandas as pd

    return pd.Series(values, name=name, dtype="float64")


# --- dropping and assembly --------------------------------------------------------------


def _drop_reason(name: str, feature: _Feature, *, forced: bool, gaps: int) -> str | None:
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


def _numeric_drop_reason(name: str, feature: _Feature, *, forced: bool, gaps: int) -> str | None:
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


def _assemble(columns: dict[str, pd.Series]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.concat(
        [s.rename(name).reset_index(drop=True) for name, s in columns.items()], axis=1
    )
    frame.attrs = {}
    return frame


def _log_report(report: CleaningReport, schema: TableSchema) -> None:
    logger.info(
        "cleaned %s -> %s rows (%s without target); %s numeric, %s categorical, %s datetime"
        " columns; dropped %s",
        report.rows_in,
        report.rows_out,
        report.rows_without_target,
        len(schema.numeric),
        len(schema.categorical),
        len(schema.datetime),
        report.dropped or "nothing",
    )
