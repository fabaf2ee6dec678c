"""The roles of a table's columns, and the task its target implies.

A ``TableSchema`` is what ingest learns about a table and what every later step relies
on: which columns are features of which kind, which were dropped and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from conveyor.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Task", "TableSchema", "infer_task"]

Task = Literal["binary", "multiclass", "regression"]

# A numeric target with at most this many distinct integer values is a class label.
MAX_CLASSES = 20


@dataclass(frozen=True)
class TableSchema:
    """Column roles of a cleaned table.

    Attributes:
        target: the column to predict.
        numeric: numeric feature columns.
        categorical: categorical feature columns (strings after cleaning).
        datetime: parsed date/time columns; used for time splits, not as features.
        dropped: columns removed by cleaning, with the reason (``"id-like"``, ...).
    """

    target: str
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    datetime: tuple[str, ...] = ()
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def features(self) -> tuple[str, ...]:
        """The model's input columns, in a stable order."""
        return self.numeric + self.categorical

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "target": self.target,
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "datetime": list(self.datetime),
            "dropped": dict(self.dropped),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableSchema:
        """Inverse of ``to_dict``."""
        return cls(
            target=data["target"],
            numeric=tuple(data.get("numeric", ())),
            categorical=tuple(data.get("categorical", ())),
            datetime=tuple(data.get("datetime", ())),
            dropped=dict(data.get("dropped", {})),
        )


def infer_task(target: pd.Series) -> Task:
    """Infer the learning task from the target column.

    Strings, booleans and categories are classification; integers with few distinct
    values too; anything else numeric is regression.

    Raises:
        DataError: the target is empty or has a single class.
    """
    import pandas as pd

    values = target.dropna()
    if values.empty:
        raise DataError(f"target column {target.name!r} has no values")
    n_unique = values.nunique()
    if n_unique < 2:
        raise DataError(
            f"target column {target.name!r} has a single value ({values.iloc[0]!r}); "
            "nothing to learn"
        )
    is_numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if is_numeric:
        integral = bool((values == values.round()).all())
        if not (integral and n_unique <= MAX_CLASSES):
            return "regression"
    return "binary" if n_unique == 2 else "multiclass"
