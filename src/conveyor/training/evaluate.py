"""Metrics per task: which exist, which direction is better, and scoring a fitted pipeline.

Binary metrics treat one label as *positive*: the greater of the two labels in sorted
order (``positive_label``). That is scikit-learn's own convention (``predict_proba[:, 1]``)
and, unlike "the minority class", it does not change between two batches of the same data:
``yes`` over ``no``, ``1`` over ``0``, ``True`` over ``False``, ``>50K`` over ``<=50K``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConfigError, TrainingError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from conveyor.data.schema import TableSchema, Task

__all__ = [
    "METRICS_BY_TASK",
    "Evaluation",
    "Predictions",
    "default_metric",
    "evaluate_model",
    "higher_is_better",
    "metric_directions",
    "model_outputs",
    "positive_label",
    "predict_rows",
    "score_predictions",
    "split_features_target",
    "validate_metric",
]

log = logging.getLogger(__name__)

METRICS_BY_TASK: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "pr_auc", "f1", "log_loss", "accuracy"),
    "multiclass": ("roc_auc_ovr", "f1_macro", "log_loss", "accuracy"),
    "regression": ("rmse", "mae", "r2"),
}

_DEFAULT_METRIC: dict[str, str] = {
    "binary": "roc_auc",
    "multiclass": "f1_macro",
    "regression": "rmse",
}

_LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae"})


@dataclass(frozen=True)
class Evaluation:
    """Metrics of a model on a held-out table.

    Attributes:
        metrics: metric name -> value; a metric that cannot be computed on this data
            (for example ROC AUC when one class is absent) is left out and logged.
        rows: number of rows scored.
    """

    metrics: dict[str, float]
    rows: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"metrics": dict(self.metrics), "rows": self.rows}


@dataclass(frozen=True)
class Predictions:
    """A model's predictions on labelled rows, made once and shared by metrics and plots.

    Attributes:
        target: the rows' true values.
        predicted: the predicted label (the most probable class) or value, per row.
        proba: class probabilities, one column per class (None for regression).
        classes: the model's classes in column order (None for regression).
    """

    target: np.ndarray
    predicted: np.ndarray
    proba: np.ndarray | None = None
    classes: np.ndarray | None = None

    @classmethod
    def from_outputs(
        cls, target: np.ndarray, outputs: np.ndarray, classes: np.ndarray | None
    ) -> Predictions:
        """From the model's outputs: class probabilities (given ``classes``) or values."""
        if classes is None:
            return cls(target, outputs)
        # One pass over the rows: the predicted label is the most probable class.
        return cls(target, classes[outputs.argmax(axis=1)], outputs, classes)

    @property
    def outputs(self) -> np.ndarray:
        """What the model returned: class probabilities or predicted values."""
        return self.predicted if self.proba is None else self.proba

    def rows(self, positions: np.ndarray) -> Predictions:
        """The predictions of the rows at ``positions`` only."""
        return Predictions.from_outputs(
            self.target[positions], self.outputs[positions], self.classes
        )

    def replaced(self, rows: np.ndarray, outputs: np.ndarray) -> Predictions:
        """These predictions with the model's outputs for ``rows`` (a mask) replaced."""
        merged = self.outputs.copy()
        merged[rows] = outputs
        return Predictions.from_outputs(self.target, merged, self.classes)

    def metrics(self, task: Task, only: str | None = None) -> dict[str, float]:
        """Every metric of the task that is defined on these rows (or just ``only``)."""
        if self.proba is None or self.classes is None:
            return _regression_metrics(self.target, self.predicted, only)
        # scikit-learn's metrics sort and compare the labels row by row; on codes (the
        # class's column) they run many times faster than on strings, to the same values.
        classes = list(self.classes)
        target = _label_codes(self.target, self.classes)
        predicted = self.proba.argmax(axis=1)
        if task == "binary":
            positive = classes.index(positive_label(classes))
            return _binary_metrics(target, predicted, self.proba, positive, only)
        return _multiclass_metrics(target, predicted, self.proba, len(classes), only)


def _label_codes(values: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Each label's column in ``classes``; labels the model never saw get codes past the
    last column, one per distinct label (a missing label included)."""
    import numpy as np
    import pandas as pd

    codes: np.ndarray = pd.Categorical(values, categories=classes).codes.astype(np.int64)
    unseen = codes < 0
    if unseen.any():
        extra, _ = pd.factorize(values[unseen], use_na_sentinel=False)
        codes[unseen] = len(classes) + extra
    return codes


def default_metric(task: Task) -> str:
    """The metric that picks between candidates when the config names none.

    Args:
        task: the learning task.

    Returns:
        ``roc_auc`` for binary, ``f1_macro`` for multiclass, ``rmse`` for regression.
    """
    return _DEFAULT_METRIC[task]


def metric_directions() -> dict[str, bool]:
    """Every known metric mapped to whether a higher value is better."""
    names = {m for metrics in METRICS_BY_TASK.values() for m in metrics}
    return {name: name not in _LOWER_IS_BETTER for name in sorted(names)}


def higher_is_better(metric: str) -> bool:
    """Whether a higher value of ``metric`` is better.

    Raises:
        ConfigError: the metric is unknown.
    """
    directions = metric_directions()
    if metric not in directions:
        raise ConfigError(
            f"unknown metric {metric!r}; known metrics: {', '.join(sorted(directions))}"
        )
    return directions[metric]


def validate_metric(metric: str, task: Task) -> None:
    """Check that ``metric`` is one of the task's metrics.

    Raises:
        ConfigError: the metric is unknown or belongs to another task.
    """
    higher_is_better(metric)
    allowed = METRICS_BY_TASK[task]
    if metric not in allowed:
        raise ConfigError(
            f"training.metric {metric!r} does not apply to a {task} task;"
            f" choose one of: {', '.join(allowed)}"
        )


def positive_label(classes: Sequence[Any]) -> Any:
    """The positive label of a binary task: the greater label in sorted order.

    Args:
        classes: the two class labels (any order).

    Returns:
        The label binary metrics treat as positive.

    Raises:
        TrainingError: there are not exactly two classes.
    """
    labels = sorted(classes)
    if len(labels) != 2:
        raise TrainingError(f"a binary task needs exactly two classes, got {len(labels)}")
    return labels[1]


def evaluate_model(
    pipeline: Any, test: pd.DataFrame, *, schema: TableSchema, task: Task
) -> Evaluation:
    """Score a fitted pipeline on a held-out table with every metric of the task.

    Works with any fitted scikit-learn pipeline (``predict``, and ``predict_proba`` plus
    ``classes_`` for classification), including one loaded back from the registry.

    Args:
        pipeline: the fitted model.
        test: held-out rows with the feature columns and the target.
        schema: column roles.
        task: the learning task.

    Returns:
        The metrics and the number of rows scored.

    Raises:
        TrainingError: the table lacks columns, or the model cannot predict it.
    """
    features, target = split_features_target(test, schema)
    if len(target) == 0:
        raise TrainingError(f"no rows with a value in target {schema.target!r} to evaluate on")
    metrics = predict_rows(pipeline, features, target, task=task).metrics(task)
    return Evaluation(metrics=metrics, rows=len(target))


def split_features_target(frame: pd.DataFrame, schema: TableSchema) -> tuple[pd.DataFrame, Any]:
    """The feature frame and the target as a numpy array, dropping rows without a target.

    Raises:
        TrainingError: a feature or the target column is missing.
    """
    missing = [c for c in (*schema.features, schema.target) if c not in frame.columns]
    if missing:
        raise TrainingError(f"table lacks column(s) {', '.join(map(repr, missing))}")
    frame = frame[frame[schema.target].notna()]
    return frame[list(schema.features)], frame[schema.target].to_numpy()


def score_predictions(
    pipeline: Any, features: pd.DataFrame, target: np.ndarray, *, task: Task
) -> dict[str, float]:
    """Every metric of the task for ``pipeline`` on ``features`` against ``target``.

    Raises:
        TrainingError: the model cannot predict these rows.
    """
    return predict_rows(pipeline, features, target, task=task).metrics(task)


def predict_rows(pipeline: Any, features: Any, target: np.ndarray, *, task: Task) -> Predictions:
    """Predict ``features`` once: the labels or values, and the class probabilities.

    Args:
        pipeline: the fitted model (``predict``; ``predict_proba`` and ``classes_`` for
            classification).
        features: the rows' feature columns (or a matrix, for an estimator without
            preprocessing).
        target: their true values.
        task: the learning task.

    Returns:
        The predictions, with ``target``.

    Raises:
        TrainingError: the model cannot predict these rows.
    """
    import numpy as np

    try:
        classes = None if task == "regression" else np.asarray(pipeline.classes_)
    except AttributeError as exc:
        raise TrainingError(f"model could not predict the evaluation rows: {exc}") from exc
    return Predictions.from_outputs(target, model_outputs(pipeline, features, task=task), classes)


def model_outputs(pipeline: Any, features: Any, *, task: Task) -> np.ndarray:
    """The class probabilities (``predict_proba``) or, for regression, the predictions.

    Raises:
        TrainingError: the model cannot predict these rows.
    """
    import numpy as np

    try:
        if task == "regression":
            return np.asarray(pipeline.predict(features))
        return np.asarray(pipeline.predict_proba(features))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise TrainingError(f"model could not predict the evaluation rows: {exc}") from exc


def _binary_metrics(
    target: np.ndarray, predicted: np.ndarray, proba: np.ndarray, positive: int, only: str | None
) -> dict[str, float]:
    """Binary metrics on label codes: ``positive`` is the positive class's column."""
    from sklearn import metrics as skm

    is_positive = target == positive
    score = proba[:, positive]
    return _collect(
        {
            "roc_auc": lambda: skm.roc_auc_score(is_positive, score),
            "pr_auc": lambda: skm.average_precision_score(is_positive, score),
            "f1": lambda: skm.f1_score(target, predicted, pos_label=positive),
            "log_loss": lambda: skm.log_loss(target, proba, labels=[0, 1]),
            "accuracy": lambda: skm.accuracy_score(target, predicted),
        },
        both_classes=bool(is_positive.any() and (~is_positive).any()),
        only=only,
    )


def _multiclass_metrics(
    target: np.ndarray, predicted: np.ndarray, proba: np.ndarray, classes: int, only: str | None
) -> dict[str, float]:
    """Multiclass metrics on label codes, for ``classes`` classes (codes 0 to classes - 1)."""
    from sklearn import metrics as skm

    labels = list(range(classes))
    return _collect(
        {
            "roc_auc_ovr": lambda: skm.roc_auc_score(
                target, proba, multi_class="ovr", labels=labels
            ),
            "f1_macro": lambda: skm.f1_score(target, predicted, average="macro"),
            "log_loss": lambda: skm.log_loss(target, proba, labels=labels),
            "accuracy": lambda: skm.accuracy_score(target, predicted),
        },
        both_classes=len(set(target.tolist())) == classes,
        only=only,
    )


def _regression_metrics(
    target: np.ndarray, predicted: np.ndarray, only: str | None
) -> dict[str, float]:
    from sklearn import metrics as skm

    actual = target.astype("float64")
    return _collect(
        {
            "rmse": lambda: skm.root_mean_squared_error(actual, predicted),
            "mae": lambda: skm.mean_absolute_error(actual, predicted),
            "r2": lambda: skm.r2_score(actual, predicted),
        },
        both_classes=len(actual) >= 2,
        only=only,
    )


def _collect(
    computations: dict[str, Callable[[], Any]], *, both_classes: bool, only: str | None
) -> dict[str, float]:
    """Run each metric (or just ``only``); leave out (and log) those undefined on this data."""
    ranking = {"roc_auc", "pr_auc", "roc_auc_ovr", "r2"}
    metrics: dict[str, float] = {}
    for name, compute in computations.items():
        if only is not None and name != only:
            continue
        if name in ranking and not both_classes:
            log.warning("metric %s is undefined on these rows (a class is absent); left out", name)
            continue
        try:
            value = float(compute())
        except ValueError as exc:
            log.warning("metric %s could not be computed: %s", name, exc)
            continue
        if math.isfinite(value):
            metrics[name] = value
        else:
            log.warning("metric %s is not finite (%s); left out", name, value)
    return metrics
