"""Fit candidate models, pick the best on a validation split carved from train, refit it."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConveyorError, TrainingError
from conveyor.training.evaluate import (
    higher_is_better,
    score_predictions,
    split_features_target,
    validate_metric,
)
from conveyor.training.models import build_estimator, estimator_params, needs_scaling
from conveyor.training.preprocess import build_preprocessor

if TYPE_CHECKING:
    import pandas as pd

    from conveyor.config import ModelSpec
    from conveyor.data.schema import TableSchema, Task

__all__ = [
    "VALIDATION_FRACTION",
    "CandidateScore",
    "TrainingResult",
    "build_pipeline",
    "train_model",
]

log = logging.getLogger(__name__)

# Share of the training rows held back to compare candidates (never the test set).
VALIDATION_FRACTION = 0.2


@dataclass(frozen=True)
class CandidateScore:
    """One candidate's score on the validation split.

    Attributes:
        model: the spec's type.
        params: the estimator's parameters as used (JSON-friendly).
        score: the selection metric on the validation split.
        fit_seconds: time to fit on the fitting part of train.
    """

    model: str
    params: dict[str, Any]
    score: float
    fit_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


@dataclass(frozen=True)
class TrainingResult:
    """The fitted winner and how it was chosen.

    Attributes:
        pipeline: fitted ``Pipeline([("preprocess", ...), ("model", ...)])`` predicting the
            original labels.
        model: the winning spec's type.
        params: the winning estimator's parameters as used (JSON-friendly).
        candidates: validation scores when several candidates competed; empty for one.
        fit_seconds: wall time of the whole step (selection and final fit).
        label_classes: classification: class labels (as strings) in ``predict_proba``
            column order; ``None`` for regression.
    """

    pipeline: Any
    model: str
    params: dict[str, Any]
    candidates: tuple[CandidateScore, ...]
    fit_seconds: float
    label_classes: tuple[str, ...] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (without the pipeline)."""
        return {
            "model": self.model,
            "params": dict(self.params),
            "candidates": [c.to_dict() for c in self.candidates],
            "fit_seconds": self.fit_seconds,
            "label_classes": list(self.label_classes) if self.label_classes else None,
        }


def train_model(
    train: pd.DataFrame,
    *,
    schema: TableSchema,
    task: Task,
    models: list[ModelSpec],
    metric: str,
    seed: int,
    cleaner: Any | None = None,
) -> TrainingResult:
    """Train the best of ``models`` on ``train``.

    One candidate is fitted on all of ``train``. Several are each fitted on 80% of
    ``train`` and scored by ``metric`` on the remaining 20% (stratified for
    classification, seeded); the best (first on ties) is refitted on all of ``train``.

    Args:
        train: training rows with the feature columns and the target.
        schema: column roles.
        task: the learning task.
        models: candidate specs, at least one.
        metric: selection metric; must belong to the task.
        seed: seed of the validation split and of every estimator.
        cleaner: the value-cleaning first step (``data.cleaning.value_cleaner``); default:
            one with the default missing markers.

    Returns:
        The fitted winner, its params, the candidates' scores and the label order.

    Raises:
        ConfigError: the metric is unknown or does not fit the task.
        TrainingError: no candidates, no rows, or a model could not be built or fitted.
    """
    started = time.perf_counter()
    validate_metric(metric, task)
    if not models:
        raise TrainingError("no candidate models to train (training.models is empty)")
    features, target = split_features_target(train, schema)
    if len(target) == 0:
        raise TrainingError(f"no training rows with a value in target {schema.target!r}")
    candidates: tuple[CandidateScore, ...] = ()
    winner = models[0]
    if len(models) > 1:
        candidates = _compare(
            features,
            target,
            schema=schema,
            task=task,
            models=models,
            metric=metric,
            seed=seed,
            cleaner=cleaner,
        )
        best = _best_index([c.score for c in candidates], higher=higher_is_better(metric))
        winner = models[best]
        log.info("selected %s (%s %.4f on validation)", winner.type, metric, candidates[best].score)
    pipeline = _fit(winner, features, target, schema=schema, task=task, seed=seed, cleaner=cleaner)
    classes = getattr(pipeline, "classes_", None) if task != "regression" else None
    return TrainingResult(
        pipeline=pipeline,
        model=winner.type,
        params=_jsonable(estimator_params(pipeline.named_steps["model"])),
        candidates=candidates,
        fit_seconds=time.perf_counter() - started,
        label_classes=tuple(str(c) for c in classes) if classes is not None else None,
    )


def build_pipeline(
    spec: ModelSpec, *, schema: TableSchema, task: Task, seed: int, cleaner: Any | None = None
) -> Any:
    """The unfitted ``Pipeline([("clean", ...), ("preprocess", ...), ("model", ...)])``.

    Args:
        spec: the model to build.
        schema: the cleaned table's column roles.
        task: the learning task.
        seed: the estimator's seed.
        cleaner: the value-cleaning first step (``data.cleaning.value_cleaner``); default:
            one with the default missing markers.

    Raises:
        TrainingError: the model cannot be built.
    """
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    from conveyor.data.cleaning import value_cleaner

    clean = clone(cleaner) if cleaner is not None else value_cleaner(schema)
    preprocessor = build_preprocessor(schema, scale=needs_scaling(spec))
    estimator = build_estimator(spec, task=task, seed=seed)
    return Pipeline([("clean", clean), ("preprocess", preprocessor), ("model", estimator)])


def _compare(
    features: pd.DataFrame,
    target: Any,
    *,
    schema: TableSchema,
    task: Task,
    models: list[ModelSpec],
    metric: str,
    seed: int,
    cleaner: Any | None,
) -> tuple[CandidateScore, ...]:
    """Fit each candidate on part of train and score it on the rest."""
    fit_x, val_x, fit_y, val_y = _validation_split(features, target, task=task, seed=seed)
    scores = []
    for spec in models:
        started = time.perf_counter()
        pipeline = _fit(spec, fit_x, fit_y, schema=schema, task=task, seed=seed, cleaner=cleaner)
        seconds = time.perf_counter() - started
        metrics = score_predictions(pipeline, val_x, val_y, task=task)
        if metric not in metrics:
            raise TrainingError(
                f"model {spec.type!r}: metric {metric!r} is undefined on the validation split"
                f" ({len(val_y)} rows); use more data or another metric"
            )
        log.info("candidate %s: %s=%.4f (%.1fs)", spec.type, metric, metrics[metric], seconds)
        params = _jsonable(estimator_params(pipeline.named_steps["model"]))
        scores.append(CandidateScore(spec.type, params, metrics[metric], seconds))
    return tuple(scores)


def _validation_split(
    features: pd.DataFrame, target: Any, *, task: Task, seed: int
) -> tuple[Any, Any, Any, Any]:
    """Seeded split of train; stratified for classification when every class can be."""
    from sklearn.model_selection import train_test_split

    stratify = None
    if task != "regression":
        import numpy as np

        _, counts = np.unique(target, return_counts=True)
        if counts.min() >= 2:
            stratify = target
        else:
            log.warning("a class has a single training row; validation split is not stratified")
    try:
        parts: list[Any] = train_test_split(
            features, target, test_size=VALIDATION_FRACTION, random_state=seed, stratify=stratify
        )
    except ValueError as exc:
        raise TrainingError(f"cannot carve a validation split from train: {exc}") from exc
    return parts[0], parts[1], parts[2], parts[3]


def _fit(
    spec: ModelSpec,
    features: pd.DataFrame,
    target: Any,
    *,
    schema: TableSchema,
    task: Task,
    seed: int,
    cleaner: Any | None,
) -> Any:
    """Build and fit one pipeline, turning any library failure into a TrainingError."""
    pipeline = build_pipeline(spec, schema=schema, task=task, seed=seed, cleaner=cleaner)
    try:
        return pipeline.fit(features, target)
    except ConveyorError:
        raise
    except Exception as exc:  # library errors of any kind: name the model and the cause
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingError(f"model {spec.type!r} failed to fit: {cause}") from exc


def _best_index(scores: list[float], *, higher: bool) -> int:
    """Index of the best score (the first one on ties)."""
    best = 0
    for index, score in enumerate(scores):
        if (score > scores[best]) if higher else (score < scores[best]):
            best = index
    return best


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    """Params with values JSON can hold; anything else becomes its repr."""
    return {name: _json_value(value) for name, value in sorted(params.items())}


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return _json_value(item())
        except (TypeError, ValueError):
            pass
    return repr(value)
