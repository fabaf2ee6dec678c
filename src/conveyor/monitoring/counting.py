"""Counting a batch or a window on a reference profile's bins and levels.

Binning and level coding live here (``bin_index``, ``level_codes``), so a batch, a
serving window and the reference always count the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conveyor.errors import DataError
from conveyor.monitoring.profile import (
    CategoricalProfile,
    ColumnProfile,
    Kind,
    NumericProfile,
    ReferenceProfile,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

__all__ = ["ColumnCounts", "bin_index", "count_frame", "level_codes"]


@dataclass(frozen=True)
class ColumnCounts:
    """One column of a batch or window, counted on the reference's bins.

    Attributes:
        kind: ``"numeric"`` or ``"categorical"``.
        counts: non-null values per reference bin / level (+ other).
        nulls: missing values.
        values: the sorted non-null values (numeric columns; for KS and Wasserstein).
    """

    kind: Kind
    counts: npt.NDArray[np.int64]
    nulls: int
    values: npt.NDArray[np.float64] | None = None

    @property
    def rows(self) -> int:
        """Values in all, missing included."""
        return int(self.counts.sum()) + self.nulls


def bin_index(edges: Sequence[float], values: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Bin of each value on the reference's edges; -1 for NaN.

    Args:
        edges: inner edges, ascending.
        values: float values (NaN for missing).

    Returns:
        Bin numbers ``0 .. len(edges)``, or -1 where the value is missing.
    """
    import numpy as np

    index = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right")
    return np.where(np.isnan(values), -1, index).astype(np.int64)


def level_codes(levels: Sequence[str], values: Sequence[Any]) -> npt.NDArray[np.int64]:
    """Code of each value: its level's position, ``len(levels)`` for other, -1 for missing.

    Args:
        levels: the reference's kept levels.
        values: strings (stripped here), or None / NaN for missing.

    Returns:
        One code per value.
    """
    import numpy as np

    lookup = {level: i for i, level in enumerate(levels)}
    other = len(levels)
    codes = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            codes[i] = -1
        else:
            codes[i] = lookup.get(str(value).strip(), other)
    return codes


def _numeric_counts(profile: NumericProfile, values: npt.NDArray[np.float64]) -> ColumnCounts:
    import numpy as np

    index = bin_index(profile.edges, values)
    present = index >= 0
    counts = np.bincount(index[present], minlength=len(profile.edges) + 1).astype(np.int64)
    return ColumnCounts("numeric", counts, int((~present).sum()), np.sort(values[present]))


def _categorical_counts(profile: CategoricalProfile, values: Sequence[Any]) -> ColumnCounts:
    import numpy as np

    codes = level_codes(profile.levels, values)
    present = codes >= 0
    counts = np.bincount(codes[present], minlength=len(profile.levels) + 1).astype(np.int64)
    return ColumnCounts("categorical", counts, int((~present).sum()))


def count_frame(
    profile: ReferenceProfile, frame: pd.DataFrame, *, predictions: Mapping[str, Any] | None = None
) -> dict[str, ColumnCounts]:
    """Count a batch on the reference's bins and levels.

    Args:
        profile: the reference.
        frame: the batch, cleaned like the training data (numbers as float, text as str).
        predictions: the model's outputs on the batch (see ``prediction_columns``).

    Returns:
        Column name -> counts, for every feature and every prediction column given.

    Raises:
        DataError: the batch lacks feature columns (all are named).
    """
    missing = [name for name in profile.features if name not in frame.columns]
    if missing:
        raise DataError(f"the batch lacks feature column(s) {', '.join(map(repr, missing))}")
    columns: dict[str, Any] = {name: frame[name] for name in profile.features}
    columns.update({k: v for k, v in (predictions or {}).items() if k in profile.predictions})
    return {
        name: _count_column(profile.columns()[name], values) for name, values in columns.items()
    }


def _count_column(profile: ColumnProfile, values: Any) -> ColumnCounts:
    import numpy as np
    import pandas as pd

    if isinstance(profile, NumericProfile):
        numbers = pd.to_numeric(pd.Series(values), errors="coerce")
        return _numeric_counts(profile, numbers.to_numpy(dtype=np.float64, na_value=np.nan))
    series = pd.Series(values, dtype=object)
    return _categorical_counts(profile, series.where(series.notna(), None).tolist())
