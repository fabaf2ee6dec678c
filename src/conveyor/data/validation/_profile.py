"""Baseline profile of an accepted batch, and the threshold math that checks a later one.

The profile holds raw facts only (types, null fractions, ranges, category sets); the
thresholds come from the ``ValidationConfig`` in force when a batch is checked, so a new
threshold applies to an old baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

    from conveyor.data.schema import TableSchema

__all__ = [
    "MAX_BASELINE_CATEGORIES",
    "ColumnKind",
    "ColumnProfile",
    "allowed_null_fraction",
    "mostly",
    "profile_frame",
    "widened_range",
]

ColumnKind = Literal["numeric", "categorical", "datetime"]

# A column with more distinct values than this is free text, not a category set.
MAX_BASELINE_CATEGORIES = 1000

# GX compares ``mostly`` with ``>=`` on floats; a hair of slack keeps a fraction that
# sits exactly on the configured limit on the passing side.
_EPSILON = 1e-9


@dataclass(frozen=True)
class ColumnProfile:
    """Raw facts about one column of the baseline batch.

    Attributes:
        name: column name.
        kind: numeric, categorical or datetime.
        dtype: the pandas dtype's scalar type name (``float64``, ``str``, ``datetime64``).
        null_fraction: share of null values, 0..1.
        minimum: smallest value of a numeric column (None if all null or not numeric).
        maximum: largest value of a numeric column.
        categories: sorted distinct values of a categorical column; None when there were
            more than ``MAX_BASELINE_CATEGORIES`` (no set check then).
    """

    name: str
    kind: ColumnKind
    dtype: str
    null_fraction: float
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[Any, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "name": self.name,
            "kind": self.kind,
            "dtype": self.dtype,
            "null_fraction": self.null_fraction,
            "min": self.minimum,
            "max": self.maximum,
            "categories": None if self.categories is None else list(self.categories),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnProfile:
        """Inverse of ``to_dict``; raises KeyError/TypeError/ValueError on a bad dict."""
        kind = str(data["kind"])
        if kind not in ("numeric", "categorical", "datetime"):
            raise ValueError(f"unknown column kind {kind!r}")
        categories = data.get("categories")
        return cls(
            name=str(data["name"]),
            kind=kind,  # type: ignore[arg-type]  # checked just above
            dtype=str(data["dtype"]),
            null_fraction=float(data["null_fraction"]),
            minimum=None if data.get("min") is None else float(data["min"]),
            maximum=None if data.get("max") is None else float(data["max"]),
            categories=None if categories is None else tuple(categories),
        )


def mostly(allowed_fraction: float) -> float:
    """GX's ``mostly`` for a check that tolerates ``allowed_fraction`` of bad rows.

    Args:
        allowed_fraction: share of rows allowed to fail, 0..1.

    Returns:
        The share of rows that must pass, clipped to 0..1, with a float-safety margin.
    """
    return min(1.0, max(0.0, 1.0 - allowed_fraction - _EPSILON))


def allowed_null_fraction(baseline: float, tolerance: float) -> float:
    """Largest null fraction a column may have: its baseline's plus the tolerance (max 1)."""
    return min(1.0, baseline + tolerance)


def widened_range(minimum: float, maximum: float, tolerance: float) -> tuple[float, float]:
    """The baseline range widened on both sides by ``tolerance`` times its width.

    A constant column (zero width) is widened by ``tolerance`` times its magnitude (at
    least 1), so a tiny change in a constant does not fail every row.

    Args:
        minimum: baseline minimum.
        maximum: baseline maximum.
        tolerance: widening as a fraction of the range (``ValidationConfig.range_tolerance``).

    Returns:
        ``(low, high)`` bounds, inclusive.
    """
    width = maximum - minimum
    if width <= 0:
        width = max(abs(minimum), abs(maximum), 1.0)
    return minimum - tolerance * width, maximum + tolerance * width


def profile_frame(df: pd.DataFrame, schema: TableSchema) -> tuple[ColumnProfile, ...]:
    """Profile every column of an accepted batch.

    Args:
        df: the cleaned batch.
        schema: column roles; columns it does not name are classified by dtype.

    Returns:
        One profile per column, in the frame's column order.
    """
    return tuple(_profile_column(str(name), df[name], schema) for name in df.columns)


def _kind(name: str, series: pd.Series, schema: TableSchema) -> ColumnKind:
    import pandas as pd

    if name in schema.numeric:
        return "numeric"
    if name in schema.categorical:
        return "categorical"
    if name in schema.datetime or pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    return "numeric" if numeric else "categorical"


def _profile_column(name: str, series: pd.Series, schema: TableSchema) -> ColumnProfile:
    kind = _kind(name, series, schema)
    null_fraction = float(series.isna().mean()) if len(series) else 0.0
    profile = ColumnProfile(name, kind, series.dtype.type.__name__, null_fraction)
    values = series.dropna()
    if kind == "numeric" and len(values):
        return _replace(profile, minimum=float(values.min()), maximum=float(values.max()))
    if kind == "categorical":
        distinct = values.unique()
        if len(distinct) <= MAX_BASELINE_CATEGORIES:
            cats = tuple(sorted((_plain(v) for v in distinct), key=lambda v: (str(type(v)), v)))
            return _replace(profile, categories=cats)
    return profile


def _replace(profile: ColumnProfile, **changes: Any) -> ColumnProfile:
    from dataclasses import replace

    return replace(profile, **changes)


def _plain(value: Any) -> Any:
    """A JSON-friendly Python scalar for a category value."""
    item = value.item() if hasattr(value, "item") else value
    return item if isinstance(item, (str, bool, int, float)) else str(item)
