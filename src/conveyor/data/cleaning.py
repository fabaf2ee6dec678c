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

How one feature column is typed, and whether it is dropped as constant or ID-like, is
:mod:`conveyor.data.columns`.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.data.coercion import factorize, parse_numbers
from conveyor.data.columns import Feature, Kind, clean_feature, drop_reason, is_text
from conveyor.data.schema import TableSchema
from conveyor.data.sources import RENAMED_COLUMNS_ATTR
from conveyor.errors import DataError
from conveyor_cleaning.values import ValueRules, clean_categories

if TYPE_CHECKING:
    from collections.abc import Iterable

    import pandas as pd

    from conveyor.config import DataConfig

__all__ = ["CleaningReport", "clean_table", "raw_sample", "value_cleaner"]

logger = logging.getLogger(__name__)


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
            feature = clean_feature(df[name], name, forced.get(name), options)
            gaps = rows_in - len(df)  # unlabelled rows removed: holes in an ID sequence
            reason = (
                drop_reason(name, feature, forced=name in forced, gaps=gaps)
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

    def add(self, name: str, feature: Feature, *, drop: str | None) -> None:
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

    if is_text(y):
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

    if not is_text(y):
        return y
    uniques = factorize(y)
    values, bad_rows, _ = parse_numbers(uniques, probe=False)
    if values is None or bad_rows:
        return y
    numbers = pd.Series(values, name=y.name)
    if bool(np.all(np.mod(values, 1) == 0)):
        return numbers.astype("int64")
    return numbers


# --- assembly -------------------------------------------------------------------------


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
