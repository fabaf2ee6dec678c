"""Evaluation plots (PNG) of a fitted pipeline on held-out data.

Drawn on bare ``matplotlib.figure.Figure`` objects rendered by Agg (pyplot is never
imported), from predictions made once (``Predictions``): the curves and counts come from
scikit-learn's metric functions, the drawing is plain matplotlib.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from conveyor.errors import TrainingError
from conveyor.training.evaluate import (
    Predictions,
    positive_label,
    predict_rows,
    split_features_target,
)
from conveyor.training.importance import PermutationImportance, permutation_importances

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from conveyor.data.schema import TableSchema, Task

__all__ = [
    "PLOT_ROWS",
    "draw_confusion_matrix",
    "draw_importance",
    "plot_rows",
    "save_evaluation_plots",
    "save_importance_plot",
    "save_prediction_plots",
]

log = logging.getLogger(__name__)

TOP_FEATURES = 20
PLOT_ROWS = 20000
_SAMPLE_SEED = 0
# Plots whose axes run from 0 to 1 (nothing else varies in width) get fixed margins:
# a constrained layout costs a second drawing pass. Plots labelled with class names,
# feature names or target values keep it.
_FIXED_LAYOUT = frozenset({"roc_curve.png", "pr_curve.png", "calibration.png"})
_MARGINS = {"left": 0.1, "right": 0.97, "bottom": 0.12, "top": 0.92}


def save_evaluation_plots(
    pipeline: Any,
    test: pd.DataFrame,
    *,
    schema: TableSchema,
    task: Task,
    out_dir: Path,
    max_rows: int = PLOT_ROWS,
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
        max_rows: plot a seeded sample of at most this many rows with a target.
        metric: the metric permutation importance scores (default: the task's).
        importance: an importance already computed on these held-out rows (then it is
            drawn, not recomputed).

    Returns:
        The paths written, in the order above.

    Raises:
        TrainingError: no rows to plot, or the model cannot predict them.
    """
    features, target = split_features_target(test, schema)
    if len(target) == 0:
        raise TrainingError(f"no rows with a value in target {schema.target!r} to plot")
    sample = plot_rows(len(target), max_rows=max_rows)
    if sample is not None:
        features, target = features.iloc[sample], target[sample]
    predictions = predict_rows(pipeline, features, target, task=task)
    paths = save_prediction_plots(predictions, task=task, out_dir=out_dir)
    if importance is None:
        importance = permutation_importances(
            pipeline, features, target, task=task, metric=metric, predictions=predictions
        )
    paths.append(save_importance_plot(importance, out_dir / "feature_importance.png"))
    return paths


def plot_rows(rows: int, *, max_rows: int = PLOT_ROWS) -> np.ndarray | None:
    """The positions of a seeded sample of ``max_rows`` of ``rows``; None: plot them all."""
    import numpy as np

    if rows <= max_rows:
        return None
    return np.sort(np.random.default_rng(_SAMPLE_SEED).choice(rows, max_rows, replace=False))


def save_prediction_plots(predictions: Predictions, *, task: Task, out_dir: Path) -> list[Path]:
    """Draw the task's plots of held-out predictions (all but the importance plot).

    Args:
        predictions: the model's predictions of the rows to plot, with their targets.
        task: the learning task.
        out_dir: folder for the PNG files (created).

    Returns:
        The paths written, in the order ``save_evaluation_plots`` names them.

    Raises:
        TrainingError: no rows, or a plot cannot be drawn from these predictions.
    """
    if len(predictions.target) == 0:
        raise TrainingError("no rows to plot")
    out_dir.mkdir(parents=True, exist_ok=True)
    drawers = _REGRESSION if task == "regression" else _BINARY if task == "binary" else _MULTI
    paths = []
    try:
        for name, draw in drawers:
            fixed = name in _FIXED_LAYOUT
            figure = _figure(4.5, layout=None if fixed else "constrained")
            draw(figure.add_subplot(), predictions)
            if fixed:
                figure.subplots_adjust(**_MARGINS)
            paths.append(_save(figure, out_dir / name))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise TrainingError(f"could not draw evaluation plots: {exc}") from exc
    return paths


def _figure(height: float, *, layout: Literal["constrained"] | None = "constrained") -> Figure:
    """A fresh figure detached from pyplot (nothing global to close), drawn by Agg."""
    from matplotlib.figure import Figure

    return Figure(figsize=(6.5, height), dpi=100, layout=layout)


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, format="png")
    figure.clear()
    return path


# -- classification ---------------------------------------------------------------------
def _positive_scores(predictions: Predictions) -> tuple[Any, np.ndarray, np.ndarray]:
    """The positive label, whether each row is positive, and its probability of being so."""
    if predictions.proba is None or predictions.classes is None:
        raise TypeError("a classifier's predictions carry probabilities")
    classes = list(predictions.classes)
    positive = positive_label(classes)
    scores = predictions.proba[:, classes.index(positive)]
    return positive, predictions.target == positive, scores


def _roc(ax: Axes, predictions: Predictions) -> None:
    from sklearn.metrics import auc, roc_curve

    positive, is_positive, scores = _positive_scores(predictions)
    fpr, tpr, _ = roc_curve(is_positive, scores)
    ax.plot(fpr, tpr, label=f"model (AUC = {auc(fpr, tpr):0.2f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    _unit_square(ax, "False Positive Rate", "True Positive Rate", positive)
    ax.legend(loc="lower right")
    ax.set_title(f"ROC curve (positive class: {positive})")


def _pr(ax: Axes, predictions: Predictions) -> None:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    positive, is_positive, scores = _positive_scores(predictions)
    precision, recall, _ = precision_recall_curve(is_positive, scores)
    average = average_precision_score(is_positive, scores)
    ax.plot(recall, precision, drawstyle="steps-post", label=f"model (AP = {average:0.2f})")
    prevalence = float(is_positive.mean())
    ax.plot(
        (0, 1),
        (prevalence, prevalence),
        color="k",
        linestyle="--",
        label=f"Chance level (AP = {prevalence:0.2f})",
    )
    _unit_square(ax, "Recall", "Precision", positive)
    ax.legend(loc="lower left")
    ax.set_title(f"Precision-recall curve (positive class: {positive})")


def _unit_square(ax: Axes, xlabel: str, ylabel: str, positive: Any) -> None:
    ax.set(
        xlabel=f"{xlabel} (Positive label: {positive})",
        xlim=(-0.01, 1.01),
        ylabel=f"{ylabel} (Positive label: {positive})",
        ylim=(-0.01, 1.01),
        aspect="equal",
    )


def _calibration(ax: Axes, predictions: Predictions) -> None:
    from sklearn.calibration import calibration_curve

    positive, is_positive, scores = _positive_scores(predictions)
    observed, predicted = calibration_curve(is_positive, scores, n_bins=10, strategy="quantile")
    ax.plot([0, 1], [0, 1], "k:", label="Perfectly calibrated")
    ax.plot(predicted, observed, marker="s", linestyle="-", label="model")
    ax.legend(loc="lower right")
    ax.set_xlabel(f"Mean predicted probability of {positive}")
    ax.set_ylabel(f"Observed fraction of {positive}")
    ax.set_title("Calibration (10 quantile bins)")


def draw_confusion_matrix(ax: Axes, predictions: Predictions) -> None:
    """Counts of (true class, predicted class) as a heat map, each count written in its cell.

    Args:
        ax: the axes to draw on.
        predictions: a classifier's predictions (rows of a class it does not know are left out).
    """
    import numpy as np

    counts, classes = _confusion_counts(predictions)
    image = ax.imshow(counts, interpolation="nearest", cmap="Blues")
    dark, light = image.cmap(1.0), image.cmap(0)
    middle = (counts.max() + counts.min()) / 2.0
    for row, column in np.ndindex(counts.shape):
        count = int(counts[row, column])
        text = min(format(count, ".2g"), format(count, "d"), key=len)
        colour = dark if count < middle else light
        ax.text(column, row, text, ha="center", va="center", color=colour)
    ticks = list(range(len(classes)))
    ax.set(xticks=ticks, yticks=ticks, xticklabels=classes, yticklabels=classes)
    ax.set(xlabel="Predicted label", ylabel="True label", ylim=(len(classes) - 0.5, -0.5))
    ax.tick_params(axis="x", labelrotation=90 if len(classes) > 4 else 0)
    ax.set_title(f"Confusion matrix ({len(predictions.target)} rows)")


def _confusion_counts(predictions: Predictions) -> tuple[np.ndarray, list[str]]:
    """Rows: true class, columns: predicted class (rows of an unknown class left out)."""
    import numpy as np
    import pandas as pd

    if predictions.proba is None or predictions.classes is None:
        raise TypeError("a classifier's predictions carry probabilities")
    n = len(predictions.classes)
    true = pd.Index(list(predictions.classes)).get_indexer(predictions.target)
    known = true >= 0
    cells = true[known] * n + predictions.proba.argmax(axis=1)[known]
    counts: np.ndarray = np.bincount(cells, minlength=n * n).reshape(n, n)
    return counts, [str(c) for c in predictions.classes]


# -- regression ---------------------------------------------------------------------------
def _residuals(ax: Axes, predictions: Predictions) -> None:
    predicted = predictions.predicted
    residuals = predictions.target.astype("float64") - predicted
    ax.scatter(predicted, residuals, s=8, alpha=0.5)
    ax.axhline(0.0, color="grey", linestyle="--")
    ax.set_xlabel("Predicted value")
    ax.set_ylabel("Residual (actual - predicted)")
    ax.set_title(f"Residuals ({len(residuals)} rows)")


def _predicted_vs_actual(ax: Axes, predictions: Predictions) -> None:
    actual = predictions.target.astype("float64")
    predicted = predictions.predicted
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


_Drawer = Callable[["Axes", Predictions], None]
_BINARY: tuple[tuple[str, _Drawer], ...] = (
    ("roc_curve.png", _roc),
    ("pr_curve.png", _pr),
    ("confusion_matrix.png", draw_confusion_matrix),
    ("calibration.png", _calibration),
)
_MULTI: tuple[tuple[str, _Drawer], ...] = (("confusion_matrix.png", draw_confusion_matrix),)
_REGRESSION: tuple[tuple[str, _Drawer], ...] = (
    ("residuals.png", _residuals),
    ("predicted_vs_actual.png", _predicted_vs_actual),
)
