"""Reference profiles: what the training data and the model's predictions looked like.

A :class:`ReferenceProfile` is built once, at training, and stored with the model
(``reference/profile.json`` on its MLflow run). Drift analysis compares a batch or a
serving window against it, so everything the statistics need is kept, and nothing more:

- numeric columns: fixed bin edges (the deciles of the training values, deduplicated;
  the outer bins are open, so out-of-range values land in the first or last bin), bin
  counts, null count, summary stats and a *sorted quantile sample* of at most
  ``sample_size`` (1,000) points, the quantiles at ``(i + 0.5) / m``: Kolmogorov-Smirnov
  and Wasserstein read the reference's distribution from it (CDF error <= 1 / (2m));
- categorical columns: the ``top_k`` most frequent levels and one ``other`` count (rare
  levels at training; unseen levels later), null count;
- predictions, profiled the same way: ``prediction`` (the predicted label, categorical,
  or the predicted value, numeric) and for classifiers ``score[<class>]`` (numeric), the
  positive class's score for a binary task, every class's score otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Literal

from conveyor.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

    from conveyor.data.schema import TableSchema

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_SAMPLE_SIZE",
    "DEFAULT_TOP_K",
    "FORMAT_VERSION",
    "OTHER",
    "PROFILE_MAX_ROWS",
    "CategoricalProfile",
    "ColumnProfile",
    "NumericProfile",
    "ReferenceProfile",
    "build_profile",
    "prediction_columns",
    "profile_model",
]

FORMAT_VERSION = 1
DEFAULT_BINS = 10
DEFAULT_TOP_K = 20
DEFAULT_SAMPLE_SIZE = 1000
PROFILE_MAX_ROWS = 100_000  # rows profiled (a seeded sample beyond this): deciles are stable
OTHER = "(other)"
Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class NumericProfile:
    """A numeric column of the reference.

    Attributes:
        edges: inner bin edges, ascending; ``len(edges) + 1`` bins, bin ``i`` holds
            ``edges[i-1] <= x < edges[i]`` (the first and last bin are open).
        counts: non-null values per bin.
        nulls: missing values.
        rows: values in all (``sum(counts) + nulls``).
        stats: mean, std, min, q25, median, q75, max of the non-null values.
        sample: sorted quantile sample (at most ``sample_size`` points).
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    nulls: int
    rows: int
    stats: dict[str, float] = field(default_factory=dict)
    sample: tuple[float, ...] = ()
    kind: Kind = "numeric"

    @property
    def bin_labels(self) -> list[str]:
        """Human labels of the bins (``< 3.5``, ``[3.5, 7)``, ``>= 7``)."""
        e = [f"{x:.4g}" for x in self.edges]
        if not e:
            return ["all"]
        middle = [f"[{lo}, {hi})" for lo, hi in pairwise(e)]
        return [f"< {e[0]}", *middle, f">= {e[-1]}"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "kind": self.kind,
            "edges": list(self.edges),
            "counts": list(self.counts),
            "nulls": self.nulls,
            "rows": self.rows,
            "stats": dict(self.stats),
            "sample": list(self.sample),
        }


@dataclass(frozen=True)
class CategoricalProfile:
    """A categorical column of the reference.

    Attributes:
        levels: the ``top_k`` most frequent levels, most frequent first.
        counts: rows per level, then one count for every other level (``OTHER``).
        nulls: missing values.
        rows: values in all (``sum(counts) + nulls``).
    """

    levels: tuple[str, ...]
    counts: tuple[int, ...]
    nulls: int
    rows: int
    kind: Kind = "categorical"

    @property
    def bin_labels(self) -> list[str]:
        """The levels, then ``OTHER``."""
        return [*self.levels, OTHER]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "kind": self.kind,
            "levels": list(self.levels),
            "counts": list(self.counts),
            "nulls": self.nulls,
            "rows": self.rows,
        }


ColumnProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class ReferenceProfile:
    """The training data's and the predictions' distributions, stored with the model.

    Attributes:
        target: the target column.
        task: ``binary``, ``multiclass`` or ``regression``.
        rows: rows profiled.
        features: feature name -> its profile (numeric first, then categorical).
        predictions: ``prediction`` / ``score[<class>]`` -> its profile (may be empty).
        options: bins, top_k and sample_size used.
    """

    target: str
    task: str
    rows: int
    features: dict[str, ColumnProfile]
    predictions: dict[str, ColumnProfile] = field(default_factory=dict)
    options: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, with ``format_version``."""
        return {
            "format_version": FORMAT_VERSION,
            "target": self.target,
            "task": self.task,
            "rows": self.rows,
            "options": dict(self.options),
            "features": {name: p.to_dict() for name, p in self.features.items()},
            "predictions": {name: p.to_dict() for name, p in self.predictions.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        """Inverse of ``to_dict``.

        Raises:
            DataError: an unknown ``format_version`` or a malformed profile.
        """
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise DataError(
                f"reference profile format_version {version!r} is not supported"
                f" (this Conveyor reads {FORMAT_VERSION})"
            )
        try:
            return cls(
                target=str(data["target"]),
                task=str(data["task"]),
                rows=int(data["rows"]),
                features={k: _column_from_dict(v) for k, v in data["features"].items()},
                predictions={k: _column_from_dict(v) for k, v in data["predictions"].items()},
                options={k: int(v) for k, v in data.get("options", {}).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"malformed reference profile: {type(exc).__name__}: {exc}") from exc

    def columns(self) -> dict[str, ColumnProfile]:
        """Features and prediction columns in one mapping."""
        return {**self.features, **self.predictions}


def _column_from_dict(data: Mapping[str, Any]) -> ColumnProfile:
    if data["kind"] == "numeric":
        return NumericProfile(
            edges=tuple(float(x) for x in data["edges"]),
            counts=tuple(int(x) for x in data["counts"]),
            nulls=int(data["nulls"]),
            rows=int(data["rows"]),
            stats={k: float(v) for k, v in data["stats"].items() if v is not None},
            sample=tuple(float(x) for x in data["sample"]),
        )
    if data["kind"] == "categorical":
        return CategoricalProfile(
            levels=tuple(str(x) for x in data["levels"]),
            counts=tuple(int(x) for x in data["counts"]),
            nulls=int(data["nulls"]),
            rows=int(data["rows"]),
        )
    raise ValueError(f"unknown column kind {data['kind']!r}")


# --- building ------------------------------------------------------------------------


def _numeric_profile(
    values: npt.NDArray[np.float64], *, bins: int, sample_size: int
) -> NumericProfile:
    import numpy as np

    present = np.sort(values[~np.isnan(values)])
    nulls = len(values) - len(present)
    if len(present) == 0:
        return NumericProfile((), (0,), nulls, len(values))
    # Edges at observed values (no interpolation): discrete columns keep clean bins.
    edges = np.unique(np.quantile(present, np.arange(1, bins) / bins, method="higher"))
    counts = np.bincount(
        np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1
    ).astype(np.int64)
    if len(present) > sample_size:
        sample = np.quantile(present, (np.arange(sample_size) + 0.5) / sample_size)
    else:
        sample = present
    q25, median, q75 = np.quantile(present, [0.25, 0.5, 0.75])
    stats = {
        "mean": float(present.mean()),
        "std": float(present.std()),
        "min": float(present[0]),
        "q25": float(q25),
        "median": float(median),
        "q75": float(q75),
        "max": float(present[-1]),
    }
    return NumericProfile(
        edges=tuple(float(e) for e in edges),
        counts=tuple(int(c) for c in counts),
        nulls=nulls,
        rows=len(values),
        stats=stats,
        sample=tuple(float(x) for x in sample),
    )


def _categorical_profile(values: pd.Series, *, top_k: int) -> CategoricalProfile:
    present = values.dropna().astype(str).str.strip()
    frequencies = present.value_counts(sort=True)
    kept = frequencies.iloc[:top_k]
    other = int(frequencies.iloc[top_k:].sum())
    return CategoricalProfile(
        levels=tuple(str(level) for level in kept.index),
        counts=(*(int(c) for c in kept.to_numpy()), other),
        nulls=len(values) - len(present),
        rows=len(values),
    )


def _profile_column(values: Any, kind: Kind, options: dict[str, int]) -> ColumnProfile:
    import numpy as np
    import pandas as pd

    if kind == "numeric":
        numbers = pd.to_numeric(pd.Series(values), errors="coerce")
        array = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        return _numeric_profile(array, bins=options["bins"], sample_size=options["sample_size"])
    return _categorical_profile(pd.Series(values, dtype=object), top_k=options["top_k"])


def build_profile(
    frame: pd.DataFrame,
    schema: TableSchema,
    *,
    task: str,
    predictions: Mapping[str, Any] | None = None,
    bins: int = DEFAULT_BINS,
    top_k: int = DEFAULT_TOP_K,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
) -> ReferenceProfile:
    """Profile the training features (and the model's predictions on them).

    Args:
        frame: the training rows (cleaned; extra columns are ignored).
        schema: which columns are numeric and categorical features.
        task: the model's task.
        predictions: ``prediction_columns(model, frame, task=task)``, or None.
        bins: quantile bins per numeric column (fewer when edges coincide).
        top_k: levels kept per categorical column; the rest count as ``OTHER``.
        sample_size: points of the sorted quantile sample per numeric column.

    Returns:
        The reference profile.

    Raises:
        DataError: the frame lacks a feature column, or an option is out of range.

    Example:
        >>> profile = build_profile(train, schema, task="binary")  # doctest: +SKIP
        >>> profile.features["age"].edges  # doctest: +SKIP
    """
    if bins < 2 or top_k < 1 or sample_size < 10:
        raise DataError(
            f"profile needs bins >= 2, top_k >= 1 and sample_size >= 10"
            f" (got bins={bins}, top_k={top_k}, sample_size={sample_size})"
        )
    missing = [c for c in schema.features if c not in frame.columns]
    if missing:
        raise DataError(f"cannot profile: frame lacks feature column(s) {', '.join(missing)}")
    options = {"bins": bins, "top_k": top_k, "sample_size": sample_size}
    features: dict[str, ColumnProfile] = {}
    for name in schema.numeric:
        features[name] = _profile_column(frame[name], "numeric", options)
    for name in schema.categorical:
        features[name] = _profile_column(frame[name], "categorical", options)
    outputs = {
        name: _profile_column(values, _prediction_kind(name, task), options)
        for name, values in (predictions or {}).items()
    }
    return ReferenceProfile(
        target=schema.target,
        task=task,
        rows=len(frame),
        features=features,
        predictions=outputs,
        options=options,
    )


def _prediction_kind(name: str, task: str) -> Kind:
    return "categorical" if name == "prediction" and task != "regression" else "numeric"


# --- predictions ---------------------------------------------------------------------


def prediction_columns(model: Any, frame: pd.DataFrame, *, task: str) -> dict[str, Any]:
    """The model's outputs on ``frame`` as profile columns.

    Args:
        model: a fitted scikit-learn-API pipeline (``predict``; ``predict_proba`` and
            ``classes_`` for classifiers).
        frame: rows with the model's feature columns.
        task: ``binary``, ``multiclass`` or ``regression``.

    Returns:
        ``{"prediction": labels or values}``, plus ``score[<class>]`` columns for a
        classifier: the positive (greater) class for a binary task, every class otherwise.

    Raises:
        DataError: the model cannot predict these rows.
    """
    import numpy as np

    try:
        if task == "regression":
            return {"prediction": np.asarray(model.predict(frame), dtype=np.float64)}
        proba = np.asarray(model.predict_proba(frame), dtype=np.float64)
        classes = list(model.classes_)
    except Exception as exc:
        raise DataError(f"the model could not predict the rows: {exc}") from exc
    labels = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    columns: dict[str, Any] = {"prediction": [str(label) for label in labels]}
    scored = [max(classes)] if task == "binary" and len(classes) == 2 else classes
    for cls in scored:
        columns[f"score[{cls}]"] = proba[:, classes.index(cls)]
    return columns


def profile_model(
    model: Any, frame: pd.DataFrame, schema: TableSchema, *, task: str, seed: int = 0
) -> ReferenceProfile:
    """Profile the training rows and the model's predictions on them.

    At most ``PROFILE_MAX_ROWS`` rows are used (a seeded random sample beyond that):
    deciles and level frequencies are already stable there, and scoring the whole
    training set of a large table would cost more than training-time budget allows.

    Args:
        model: the fitted pipeline.
        frame: the training rows.
        schema: the table schema.
        task: the model's task.
        seed: seed of the sample.

    Returns:
        The reference profile, predictions included.

    Raises:
        DataError: the frame lacks a feature column, or the model cannot predict it.
    """
    features = frame[list(schema.features)]
    if len(features) > PROFILE_MAX_ROWS:
        features = features.sample(n=PROFILE_MAX_ROWS, random_state=seed)
    predictions = prediction_columns(model, features, task=task)
    return build_profile(features, schema, task=task, predictions=predictions)
