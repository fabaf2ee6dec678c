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
    model_outputs,
    predict_rows,
)
from conveyor.training.feature_blocks import feature_blocks

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np
    import pandas as pd

    from conveyor.data.schema import Task
    from conveyor.training.evaluate import Predictions
    from conveyor.training.feature_blocks import FeatureBlocks

__all__ = ["PERMUTATION_ROWS", "REPEATS", "PermutationImportance", "permutation_importances"]

log = logging.getLogger(__name__)

PERMUTATION_ROWS = 2000
REPEATS = 5
_SEED = 0
# At most this many preprocessed values go to the model in one predict call (32 MB of
# float64): enough for every shuffle of a typical table, bounded for a wide one.
_BATCH_VALUES = 1 << 22


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
    predictions: Predictions | None = None,
) -> PermutationImportance:
    """Permutation importance of every input feature of ``pipeline`` on held-out rows.

    The same numbers as scikit-learn's ``permutation_importance`` of the whole pipeline
    (same shuffles, same scores). When the pipeline's preprocessing works value by value
    per column (Conveyor's own does), the rows are preprocessed once and each shuffle
    moves only the shuffled feature's preprocessed columns.

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
        predictions: the model's predictions of exactly ``features`` when already made
            (then they are not made again).

    Returns:
        Mean and standard deviation per feature, with the metric, rows and repeats used.

    Raises:
        TrainingError: no rows, no metric defined on them, or the model cannot predict them.
    """
    import numpy as np

    if len(target) == 0:
        raise TrainingError("no held-out rows to compute permutation importance on")
    if len(features) > max_rows:
        keep = np.sort(np.random.default_rng(_SEED).choice(len(features), max_rows, replace=False))
        features, target = features.iloc[keep], target[keep]
        predictions = predictions.rows(keep) if predictions is not None else None
    started = time.perf_counter()
    if predictions is None:
        predictions = predict_rows(pipeline, features, target, task=task)
    metric = _defined_metric(predictions, task=task, wanted=metric)
    sign = 1.0 if higher_is_better(metric) else -1.0
    baseline = sign * predictions.metrics(task, only=metric)[metric]
    blocks = feature_blocks(pipeline, features)
    if blocks is None:
        scores = _shuffled_pipeline_scores(
            pipeline, features, target, task=task, metric=metric, repeats=repeats
        )
    else:
        scores = _shuffled_block_scores(
            blocks, predictions, task=task, metric=metric, repeats=repeats
        )
    importances = baseline - sign * scores
    seconds = time.perf_counter() - started
    log.info(
        "permutation importance of %d features (%s, %d rows, %d repeats%s) took %.2fs",
        features.shape[1],
        metric,
        len(target),
        repeats,
        "" if blocks is None else ", preprocessed once",
        seconds,
    )
    names = [str(c) for c in features.columns]
    return PermutationImportance(
        mean=dict(zip(names, map(float, np.mean(importances, axis=1)), strict=True)),
        std=dict(zip(names, map(float, np.std(importances, axis=1)), strict=True)),
        metric=metric,
        rows=len(target),
        repeats=repeats,
        seconds=seconds,
    )


def _shuffles(rows: int, repeats: int) -> Iterator[np.ndarray]:
    """The row orders scikit-learn's ``permutation_importance`` uses for each feature.

    Every feature gets the same fresh generator; each repeat shuffles the previous order
    again, and a feature's column is re-indexed by it cumulatively (see the callers).
    """
    import numpy as np

    seed = np.random.RandomState(_SEED).randint(np.iinfo(np.int32).max + 1)
    generator = np.random.RandomState(seed)
    order = np.arange(rows)
    for _ in range(repeats):
        generator.shuffle(order)
        yield order


def _shuffled_block_scores(
    blocks: FeatureBlocks, unshuffled: Predictions, *, task: Task, metric: str, repeats: int
) -> np.ndarray:
    """Metric per (feature, repeat), shuffling the feature's preprocessed columns.

    A row the shuffle left as it was (the same value, or a value of the same category)
    keeps its unshuffled prediction. The changed rows of many shuffles are predicted in
    one call: a model's predict has a fixed cost per call (LightGBM's is a few ms).
    """
    import numpy as np

    scores = np.empty((len(blocks.columns), repeats))
    shuffles = _changed_rows(blocks.matrix, list(blocks.columns.values()), repeats)
    for batch in _batches(shuffles):
        rows = np.concatenate([changed.rows for changed in batch])
        outputs = (
            model_outputs(blocks.estimator, rows, task=task)
            if len(rows)
            else np.empty((0, *unshuffled.outputs.shape[1:]))
        )
        start = 0
        for changed in batch:
            end = start + len(changed.rows)
            shuffled = unshuffled.replaced(changed.mask, outputs[start:end])
            scores[changed.feature, changed.repeat] = shuffled.metrics(task, only=metric)[metric]
            start = end
    return scores


@dataclass(frozen=True)
class _Changed:
    """The rows one shuffle of one feature changed."""

    feature: int
    repeat: int
    mask: np.ndarray
    rows: np.ndarray


def _changed_rows(matrix: np.ndarray, blocks: list[np.ndarray], repeats: int) -> Iterator[_Changed]:
    """For each feature and repeat, the preprocessed rows that shuffling its block changed."""
    import numpy as np

    for feature, columns in enumerate(blocks):
        shuffled = matrix.copy()
        for repeat, order in enumerate(_shuffles(len(matrix), repeats)):
            shuffled[:, columns] = shuffled[np.ix_(order, columns)]
            # NaN differs from itself: such a row counts as changed and is predicted again.
            mask = (shuffled[:, columns] != matrix[:, columns]).any(axis=1)
            yield _Changed(feature, repeat, mask, shuffled[mask])


def _batches(changes: Iterator[_Changed]) -> Iterator[list[_Changed]]:
    """Consecutive shuffles, grouped so that one group's rows stay within _BATCH_VALUES."""
    batch: list[_Changed] = []
    values = 0
    for changed in changes:
        if batch and values + changed.rows.size > _BATCH_VALUES:
            yield batch
            batch, values = [], 0
        batch.append(changed)
        values += changed.rows.size
    if batch:
        yield batch


def _shuffled_pipeline_scores(
    pipeline: Any,
    features: pd.DataFrame,
    target: np.ndarray,
    *,
    task: Task,
    metric: str,
    repeats: int,
) -> np.ndarray:
    """Metric per (feature, repeat), shuffling the raw column and predicting the pipeline."""
    import numpy as np

    scores = np.empty((features.shape[1], repeats))
    for index, name in enumerate(features.columns):
        shuffled = features.copy()
        for repeat, order in enumerate(_shuffles(len(target), repeats)):
            column = shuffled.iloc[order, index]
            column.index = shuffled.index
            shuffled[name] = column
            predictions = predict_rows(pipeline, shuffled, target, task=task)
            scores[index, repeat] = predictions.metrics(task, only=metric)[metric]
    return scores


def _defined_metric(predictions: Predictions, *, task: Task, wanted: str | None) -> str:
    """``wanted`` if it can be computed on these rows, else the task's first metric that can."""
    wanted = wanted or default_metric(task)
    if wanted in predictions.metrics(task, only=wanted):
        return wanted
    defined = predictions.metrics(task)
    for metric in METRICS_BY_TASK[task]:
        if metric in defined:
            log.warning(
                "%s is undefined on the held-out rows; importance scores %s", wanted, metric
            )
            return metric
    raise TrainingError(f"no {task} metric is defined on the held-out rows")
