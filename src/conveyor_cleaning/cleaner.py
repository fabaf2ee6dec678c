"""ValueCleaner: the first step of every registered pipeline, so raw rows score as in training.

It takes the raw table's columns (any dtypes: integers, numbers stored as text, padded
strings, missing markers), accepts and ignores the columns the model does not use
(dropped as ID-like, constant or configured, the target, date/time columns) and returns
the features cleaned by the value rules (:mod:`conveyor_cleaning.values`): numeric
features as float64 with NaN, categorical features as pandas ``str`` with NaN. Cleaning a
cleaned frame changes nothing, so the pipeline is fitted on the table training cleaned.

It learns nothing from data: ``fit`` only records the column names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sklearn.base import BaseEstimator, TransformerMixin

from conveyor_cleaning.values import ValueRules, clean_categories, clean_numbers

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ValueCleaner", "split_cleaner"]

_SHOWN = 8


class ValueCleaner(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Clean raw feature values the way training did.

    Args:
        numeric: numeric feature columns, in the model's order.
        categorical: categorical feature columns, in the model's order (after ``numeric``).
        na_values: text values read as missing (compared after stripping spaces).
        strip: strip spaces from category values.
        ignored: columns accepted and ignored (dropped by cleaning, target, date/times).
        renamed: raw header -> the model's column name (headers training stripped).

    Example:
        >>> cleaner = ValueCleaner(numeric=["age"], categorical=["job"], na_values=["?"])
        >>> cleaner.fit_transform(pd.DataFrame({"age": ["41", "?"], "job": [" nurse", 3]}))
    """

    def __init__(
        self,
        *,
        numeric: tuple[str, ...] | list[str] = (),
        categorical: tuple[str, ...] | list[str] = (),
        na_values: tuple[str, ...] | list[str] = (),
        strip: bool = True,
        ignored: tuple[str, ...] | list[str] = (),
        renamed: dict[str, str] | None = None,
    ) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.na_values = na_values
        self.strip = strip
        self.ignored = ignored
        self.renamed = renamed

    @property
    def rules(self) -> ValueRules:
        """The value rules this cleaner applies."""
        return ValueRules(frozenset(self.na_values), self.strip)

    @property
    def features(self) -> list[str]:
        """The model's input columns, in order."""
        return [*self.numeric, *self.categorical]

    def fit(self, X: Any, y: Any = None) -> ValueCleaner:  # noqa: N803 (scikit-learn's name)
        """Record the feature columns (nothing is learnt from the values)."""
        import numpy as np

        self.feature_names_in_ = np.asarray(self.features, dtype=object)
        self.n_features_in_ = len(self.features)
        return self

    def transform(self, X: Any) -> pd.DataFrame:  # noqa: N803
        """The features of ``X`` cleaned, in the model's order.

        Other columns are ignored, as scikit-learn's ``ColumnTransformer`` ignores them
        (the server, which answers clients, refuses columns that are neither features
        nor ``ignored``).

        Raises:
            ValueError: a feature column is missing.
        """
        import pandas as pd

        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
        frame = self._named(frame)
        rules = self.rules
        data: dict[str, Any] = {}
        for name in self.numeric:
            data[name], _, _ = clean_numbers(frame[name], rules)
        for name in self.categorical:
            data[name], _ = clean_categories(frame[name].reset_index(drop=True), rules)
        return pd.DataFrame(data, columns=self.features)

    def _named(self, frame: pd.DataFrame) -> pd.DataFrame:
        renamed = self.renamed or {}
        names = [
            renamed.get(str(c), str(c).strip() if self.strip else str(c)) for c in frame.columns
        ]
        if names != list(frame.columns):
            frame = frame.set_axis(names, axis="columns")
        missing = [n for n in self.features if n not in frame.columns]
        if missing:
            raise ValueError(f"missing column(s) {_listed(missing)}")
        return frame

    def get_feature_names_out(self, input_features: Any = None) -> Any:
        """The output columns: the features, in order."""
        import numpy as np

        return np.asarray(self.features, dtype=object)

    def describe(self) -> dict[str, Any]:
        """JSON form of the rules, for model metadata and documentation."""
        return {
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "na_values": sorted(self.na_values),
            "strip": self.strip,
            "ignored": list(self.ignored),
            "renamed": dict(self.renamed or {}),
        }


def _listed(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_SHOWN])
    return shown + (", ..." if len(names) > _SHOWN else "")


def split_cleaner(pipeline: Any) -> tuple[ValueCleaner | None, Any]:
    """A pipeline's value-cleaning first step and the rest of it.

    Args:
        pipeline: a fitted scikit-learn Pipeline (or any estimator).

    Returns:
        ``(cleaner, rest)``: the first step when it cleans values (duck-typed, so a
        cleaner loaded from a model's own code folder counts too) and the pipeline after
        it; ``(None, pipeline)`` otherwise.
    """
    steps = getattr(pipeline, "steps", None)
    if not steps or len(steps) < 2:
        return None, pipeline
    first = steps[0][1]
    if type(first).__name__ != "ValueCleaner" or not hasattr(first, "rules"):
        return None, pipeline
    return first, pipeline[1:]
