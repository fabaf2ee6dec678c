"""Permutation importance: how much a held-out score drops when one input feature is shuffled.

Computed on the whole fitted pipeline with the raw feature columns, so the importance is
per input feature (not per one-hot column), and the same for every kind of model. The
model's own importances (split counts, coefficients) are not used: split counts rank a
feature by how often the trees split on it, which can put a sampling-weight column first.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conveyor.errors import TrainingError
from conveyor.training.evaluate import (
    METRICS_BY_TASK,
    default_metric,
    higher_is_better,
    score_predictions,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from conveyor.data.schema import Task

__all__ = ["PERMUTATION_ROWS", "REPEATS", "PermutationImportance", "permutation_importances"]

log = logging.getLogger(__name__)

PERMUTATION_ROWS = 2000
REPEATS = 5
_SEED = 0


@dataclass(frozen=True)
class PermutationImportance:
    """Per input feature: the held-out score's change when that feature is shuffled.

    Attributes:
        mean: feature -> mean change over the repeats, signed so that larger means the
            model relies on the feature more (near zero or below: it does not).
        std: feature -> standard deviation of the change over the repeats.
        metric: the metric scored (a drop in it, or a rise for a loss such as rmse).
        rows: held-out rows scored.
        repeats: shuffles per feature.
        seconds: wall time of the computation.
    """

    mean: dict[str, float]
    std: dict[str, float]
    metric: str
    rows: int
    repeats: int
    seconds: float = 0.0

    @property
    def method(self) -> str:
        """How the numbers were made, for an axis label or a caption."""
        change = "drop" if higher_is_better(self.metric) else "rise"
        return (
            f"permutation importance: {change} in {self.metric}"
            f" on {self.rows} held-out rows, {self.repeats} repeats"
        )

    def ranked(self) -> list[tuple[str, float, float]]:
        """``(feature, mean, std)``, most important first (ties by name)."""
        order = sorted(self.mean, key=lambda name: (-self.mean[name], name))
        return [(name, self.mean[name], self.std[name]) for name in order]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "method": self.method,
            "metric": self.metric,
            "rows": self.rows,
            "repeats": self.repeats,
            "seconds": self.seconds,
            "mean": dict(self.mean),
            "std": dict(self.std),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PermutationImportance:
        """Inverse of ``to_dict``."""
        return cls(
            mean={str(k): float(v) for k, v in data["mean"].items()},
            std={str(k): float(v) for k, v in data["std"].items()},
            metric=str(data["metric"]),
            rows=int(data["rows"]),
            repeats=int(data["repeats"]),
            seconds=float(data.get("seconds", 0.0)),
        )


def permutation_importances(
    pipeline: Any,
    features: pd.DataFrame,
    target: np.ndarray,
    *,
    task: Task,
    metric: str | None = None,
    repeats: int = REPEATS,
    max_rows: int = PERMUTATION_ROWS,
) -> PermutationImportance:
    """Permutation importance of every input feature of ``pipeline`` on held-out rows.

    Example:
        >>> result = permutation_importances(model, x_test, y_test, task="binary")  # doctest: +SKIP
        >>> result.ranked()[0]  # doctest: +SKIP
        ('education-num', 0.081, 0.006)

    Args:
        pipeline: the fitted model (raw feature columns in, predictions out).
        features: held-out feature columns.
        target: their target values.
        task: the learning task.
        metric: the metric to score (default: the task's); when it is undefined on these
            rows (a class is absent), the task's first metric that is defined.
        repeats: shuffles per feature.
        max_rows: score a seeded sample of at most this many rows.

    Returns:
        Mean and standard deviation per feature, with the metric, rows and repeats used.

    Raises:
        TrainingError: no rows, no metric defined on them, or the model cannot predict them.
    """
    import numpy as np
    from sklearn.inspection import permutation_importance

    if len(target) == 0:
        raise TrainingError("no held-out rows to compute permutation importance on")
    if len(features) > max_rows:
        keep = np.sort(np.random.default_rng(_SEED).choice(len(features), max_rows, replace=False))
        features, target = features.iloc[keep], target[keep]
    metric = _defined_metric(pipeline, features, target, task=task, wanted=metric)
    sign = 1.0 if higher_is_better(metric) else -1.0

    def scorer(estimator: Any, x: pd.DataFrame, y: np.ndarray) -> float:
        return sign * score_predictions(estimator, x, y, task=task)[metric]

    started = time.perf_counter()
    result = permutation_importance(
        pipeline, features, target, scoring=scorer, n_repeats=repeats, random_state=_SEED, n_jobs=1
    )
    seconds = time.perf_counter() - started
    log.info(
        "permutation importance of %d features (%s, %d rows, %d repeats) took %.2fs",
        features.shape[1],
        metric,
        len(target),
        repeats,
        seconds,
    )
    names = [str(c) for c in features.columns]
    return PermutationImportance(
        mean=dict(zip(names, map(float, result.importances_mean), strict=True)),
        std=dict(zip(names, map(float, result.importances_std), strict=True)),
        metric=metric,
        rows=len(target),
        repeats=repeats,
        seconds=seconds,
    )


def _defined_metric(
    pipeline: Any, features: pd.DataFrame, target: np.ndarray, *, task: Task, wanted: str | None
) -> str:
    """``wanted`` if it can be computed on these rows, else the task's first metric that can."""
    wanted = wanted or default_metric(task)
    defined = score_predictions(pipeline, features, target, task=task)
    if wanted in defined:
        return wanted
    for metric in METRICS_BY_TASK[task]:
        if metric in defined:
            log.warning(
                "%s is undefined on the held-out rows; importance scores %s", wanted, metric
            )
            return metric
    raise TrainingError(f"no {task} metric is defined on the held-out rows")
