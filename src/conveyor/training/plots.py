"""Evaluation plots (PNG) of a fitted pipeline on held-out data."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.errors import TrainingError
from conveyor.training.evaluate import positive_label, split_features_target
from conveyor.training.preprocess import output_feature_sources

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from conveyor.data.schema import TableSchema, Task

__all__ = ["save_evaluation_plots"]

log = logging.getLogger(__name__)

PERMUTATION_ROWS = 2000
TOP_FEATURES = 20
_SAMPLE_SEED = 0


def save_evaluation_plots(
    pipeline: Any,
    test: pd.DataFrame,
    *,
    schema: TableSchema,
    task: Task,
    out_dir: Path,
    max_rows: int = 20000,
) -> list[Path]:
    """Draw the task's evaluation plots of ``pipeline`` on ``test`` into ``out_dir``.

    Binary: ``roc_curve.png``, ``pr_curve.png``, ``confusion_matrix.png``,
    ``calibration.png``; multiclass: ``confusion_matrix.png``; regression:
    ``residuals.png``, ``predicted_vs_actual.png``; every task: ``feature_importance.png``
    (the model's own importances summed per input feature, else permutation importance on
    at most 2,000 rows).

    Args:
        pipeline: the fitted model.
        test: held-out rows with the feature columns and the target.
        schema: column roles.
        task: the learning task.
        out_dir: folder for the PNG files (created).
        max_rows: plot a seeded sample of at most this many rows.

    Returns:
        The paths written, in the order above.

    Raises:
        TrainingError: no rows to plot, or the model cannot predict them.
    """
    import matplotlib

    matplotlib.use("Agg")
    if len(test) > max_rows:
        test = test.sample(n=max_rows, random_state=_SAMPLE_SEED)
    features, target = split_features_target(test, schema)
    if len(target) == 0:
        raise TrainingError(f"no rows with a value in target {schema.target!r} to plot")
    out_dir.mkdir(parents=True, exist_ok=True)
    drawers = _REGRESSION if task == "regression" else _BINARY if task == "binary" else _MULTI
    height = max(3.0, 0.3 * min(TOP_FEATURES, len(schema.features)) + 1.5)
    jobs = [*drawers, ("feature_importance.png", _feature_importance)]
    paths = []
    try:
        for name, draw in jobs:
            figure = _figure(height if draw is _feature_importance else 4.5)
            draw(figure.add_subplot(), pipeline, features, target)
            paths.append(_save(figure, out_dir / name))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise TrainingError(f"could not draw evaluation plots: {exc}") from exc
    return paths


def _figure(height: float) -> Figure:
    """A fresh figure detached from pyplot (nothing global to close)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(6.5, height), dpi=100, layout="constrained")


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, format="png")
    figure.clear()
    return path


# -- classification ---------------------------------------------------------------------
def _positive_scores(pipeline: Any, features: pd.DataFrame) -> tuple[Any, np.ndarray]:
    classes = list(pipeline.classes_)
    positive = positive_label(classes)
    return positive, pipeline.predict_proba(features)[:, classes.index(positive)]


def _roc(ax: Axes, pipeline: Any, features: pd.DataFrame, target: np.ndarray) -> None:
    from sklearn.metrics import RocCurveDisplay

    positive, scores = _positive_scores(pipeline, features)
    RocCurveDisplay.from_predictions(target, scores, pos_label=positive, ax=ax, name="model")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.legend(loc="lower right")
    ax.set_title(f"ROC curve (positive class: {positive})")


def _pr(ax: Axes, pipeline: Any, features: pd.DataFrame, target: np.ndarray) -> None:
    from sklearn.metrics import PrecisionRecallDisplay

    positive, scores = _positive_scores(pipeline, features)
    PrecisionRecallDisplay.from_predictions(
        target, scores, pos_label=positive, ax=ax, name="model", plot_chance_level=True
    )
    ax.legend(loc="lower left")
    ax.set_title(f"Precision-recall curve (positive class: {positive})")


def _calibration(ax: Axes, pipeline: Any, features: pd.DataFrame, target: np.ndarray) -> None:
    from sklearn.calibration import CalibrationDisplay

    positive, scores = _positive_scores(pipeline, features)
    CalibrationDisplay.from_predictions(
        target, scores, pos_label=positive, n_bins=10, strategy="quantile", ax=ax, name="model"
    )
    ax.set_xlabel(f"Mean predicted probability of {positive}")
    ax.set_ylabel(f"Observed fraction of {positive}")
    ax.set_title("Calibration (10 quantile bins)")


def _confusion(ax: Axes, pipeline: Any, features: pd.DataFrame, target: np.ndarray) -> None:
    from sklearn.metrics import ConfusionMatrixDisplay

    classes = list(pipeline.classes_)
    ConfusionMatrixDisplay.from_predictions(
        target,
        pipeline.predict(features),
        labels=classes,
        ax=ax,
        colorbar=False,
        cmap="Blues",
        xticks_rotation="vertical" if len(classes) > 4 else "horizontal",
    )
    ax.set_title(f"Confusion matrix ({len(target)} rows)")


# -- regression ---------------------------------------------------------------------------
def _residuals(ax: Axes, pipeline: Any, features: pd.DataFrame, target: np.ndarray) -> None:
    predicted = pipeline.predict(features)
    residuals = target.astype("float64") - predicted
    ax.scatter(predicted, residuals, s=8, alpha=0.5)
    ax.axhline(0.0, color="grey", linestyle="--")
    ax.set_xlabel("Predicted value")
    ax.set_ylabel("Residual (actual - predicted)")
    ax.set_title(f"Residuals ({len(target)} rows)")


def _predicted_vs_actual(
    ax: Axes, pipeline: Any, features: pd.DataFrame, target: np.ndarray
) -> None:
    actual = target.astype("float64")
    predicted = pipeline.predict(features)
    ax.scatter(actual, predicted, s=8, alpha=0.5)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="grey", linestyle="--", label="perfect prediction")
    ax.legend(loc="upper left")
    ax.set_xlabel("Actual value")
    ax.set_ylabel("Predicted value")
    ax.set_title("Predicted vs actual")


# -- feature importance -------------------------------------------------------------------
def _feature_importance(
    ax: Axes, pipeline: Any, features: pd.DataFrame, target: np.ndarray
) -> None:
    importances = _model_importances(pipeline, list(features.columns))
    kind = "model's own importance"
    if importances is None:
        importances = _permutation_importances(pipeline, features, target)
        kind = "permutation importance (score drop)"
    ranked = sorted(importances.items(), key=lambda item: item[1], reverse=True)[:TOP_FEATURES]
    names = [name for name, _ in reversed(ranked)]
    ax.barh(names, [value for _, value in reversed(ranked)], color="tab:blue")
    ax.set_xlabel(kind)
    ax.set_title(f"Feature importance (top {len(ranked)})")


def _model_importances(pipeline: Any, columns: list[str]) -> dict[str, float] | None:
    """The estimator's importances (or |coefficients|) summed per input feature."""
    import numpy as np

    steps = getattr(pipeline, "named_steps", {})
    model, preprocessor = steps.get("model"), steps.get("preprocess")
    if model is None or preprocessor is None:
        return None
    try:
        values = np.asarray(model.feature_importances_, dtype="float64")
    except AttributeError:
        coef = getattr(model, "coef_", None)
        if coef is None:
            return None
        magnitudes = np.abs(np.asarray(coef, dtype="float64"))
        values = magnitudes.reshape(-1, magnitudes.shape[-1]).mean(axis=0)
    sources = output_feature_sources(preprocessor)
    if len(sources) != len(values):
        log.warning("importances do not match the preprocessor's outputs; using permutation")
        return None
    totals = dict.fromkeys(columns, 0.0)
    for source, value in zip(sources, values, strict=True):
        totals[source] = totals.get(source, 0.0) + float(value)
    return totals


def _permutation_importances(
    pipeline: Any, features: pd.DataFrame, target: np.ndarray
) -> dict[str, float]:
    import numpy as np
    from sklearn.inspection import permutation_importance

    if len(features) > PERMUTATION_ROWS:
        rng = np.random.default_rng(_SAMPLE_SEED)
        keep = np.sort(rng.choice(len(features), size=PERMUTATION_ROWS, replace=False))
        features, target = features.iloc[keep], target[keep]
    result = permutation_importance(
        pipeline, features, target, n_repeats=3, random_state=_SAMPLE_SEED, n_jobs=1
    )
    return dict(zip(features.columns, map(float, result.importances_mean), strict=True))


_Drawer = Callable[["Axes", Any, "pd.DataFrame", "np.ndarray"], None]
_BINARY: tuple[tuple[str, _Drawer], ...] = (
    ("roc_curve.png", _roc),
    ("pr_curve.png", _pr),
    ("confusion_matrix.png", _confusion),
    ("calibration.png", _calibration),
)
_MULTI: tuple[tuple[str, _Drawer], ...] = (("confusion_matrix.png", _confusion),)
_REGRESSION: tuple[tuple[str, _Drawer], ...] = (
    ("residuals.png", _residuals),
    ("predicted_vs_actual.png", _predicted_vs_actual),
)
