"""Evaluation plots (PNG) of a fitted pipeline on held-out data."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.errors import TrainingError
from conveyor.training.evaluate import positive_label, split_features_target
from conveyor.training.importance import PermutationImportance, permutation_importances

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from conveyor.data.schema import TableSchema, Task

__all__ = ["draw_importance", "save_evaluation_plots", "save_importance_plot"]

log = logging.getLogger(__name__)

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
    metric: str | None = None,
    importance: PermutationImportance | None = None,
) -> list[Path]:
    """Draw the task's evaluation plots of ``pipeline`` on ``test`` into ``out_dir``.

    Binary: ``roc_curve.png``, ``pr_curve.png``, ``confusion_matrix.png``,
    ``calibration.png``; multiclass: ``confusion_matrix.png``; regression:
    ``residuals.png``, ``predicted_vs_actual.png``; every task: ``feature_importance.png``,
    the permutation importance of each input feature (the drop in ``metric`` when its
    values are shuffled, on at most 2,000 seeded held-out rows, mean and std over 5
    repeats; the method is named on the x-axis), the top 20 features.

    Args:
        pipeline: the fitted model.
        test: held-out rows with the feature columns and the target.
        schema: column roles.
        task: the learning task.
        out_dir: folder for the PNG files (created).
        max_rows: plot a seeded sample of at most this many rows.
        metric: the metric permutation importance scores (default: the task's).
        importance: an importance already computed on these held-out rows (then it is
            drawn, not recomputed).

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
    paths = []
    try:
        for name, draw in drawers:
            figure = _figure(4.5)
            draw(figure.add_subplot(), pipeline, features, target)
            paths.append(_save(figure, out_dir / name))
        if importance is None:
            importance = permutation_importances(
                pipeline, features, target, task=task, metric=metric
            )
        paths.append(save_importance_plot(importance, out_dir / "feature_importance.png"))
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
def save_importance_plot(
    importance: PermutationImportance, path: Path, *, top: int = TOP_FEATURES
) -> Path:
    """Draw ``importance`` as horizontal bars with std error bars into a PNG file.

    Args:
        importance: the permutation importance to draw.
        path: the PNG file to write (its folder must exist).
        top: draw at most this many features, most important first.

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    figure = _figure(max(3.0, 0.3 * min(top, len(importance.mean)) + 1.5))
    draw_importance(figure.add_subplot(), importance, top=top)
    return _save(figure, path)


def draw_importance(
    ax: Axes, importance: PermutationImportance, *, top: int = TOP_FEATURES
) -> None:
    """Horizontal bars (mean) with error bars (std), the method named on the x-axis.

    Args:
        ax: the axes to draw on.
        importance: the permutation importance to draw.
        top: draw at most this many features, most important first.
    """
    ranked = list(reversed(importance.ranked()[:top]))  # barh draws bottom-up
    ax.barh(
        [name.replace("$", r"\$") for name, _, _ in ranked],  # a column name is no mathtext
        [mean for _, mean, _ in ranked],
        xerr=[std for _, _, std in ranked],
        color="tab:blue",
        ecolor="black",
        capsize=3,
    )
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel(importance.method)
    shown = (
        f"top {len(ranked)} of {len(importance.mean)}"
        if len(ranked) < len(importance.mean)
        else f"{len(ranked)} features"
    )
    ax.set_title(f"Feature importance ({shown}; bars: mean, whiskers: std)")


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
