"""The evaluate step's work: metrics, permutation importance and plots of held-out rows.

The held-out rows are predicted once; the metrics, the plots and the importance's
unshuffled score all read those predictions. The plots are drawn in a second thread while
permutation importance runs: importance spends its time in the model's predict, which
for the compiled models (LightGBM, XGBoost, scikit-learn's trees, numpy) releases the
GIL, so the two overlap on a machine with a core to spare.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conveyor.errors import TrainingError
from conveyor.training.evaluate import Evaluation, predict_rows, split_features_target
from conveyor.training.importance import PermutationImportance, permutation_importances
from conveyor.training.plots import (
    plot_rows,
    save_importance_plot,
    save_prediction_plots,
)

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from conveyor.data.schema import TableSchema, Task

__all__ = ["HeldOutReport", "evaluate_held_out"]


@dataclass(frozen=True)
class HeldOutReport:
    """What the evaluate step learns about a model from the held-out rows.

    Attributes:
        evaluation: every metric of the task.
        importance: permutation importance of each input feature.
        plots: the PNG files written, in ``save_evaluation_plots``'s order.
    """

    evaluation: Evaluation
    importance: PermutationImportance
    plots: list[Path]


def evaluate_held_out(
    pipeline: Any,
    test: pd.DataFrame,
    *,
    schema: TableSchema,
    task: Task,
    metric: str | None,
    plots_dir: Path,
) -> HeldOutReport:
    """Score, explain and plot a fitted pipeline on held-out rows.

    The same results as ``evaluate_model``, ``permutation_importances`` on the rows with
    a target and ``save_evaluation_plots`` with that importance, predicting the rows once.

    Args:
        pipeline: the fitted model.
        test: held-out rows with the feature columns and the target.
        schema: column roles.
        task: the learning task.
        metric: the metric permutation importance scores (default: the task's).
        plots_dir: folder for the PNG files (created).

    Returns:
        The metrics, the importance and the plot files.

    Raises:
        TrainingError: no rows with a target, or the model cannot predict them.
    """
    from concurrent.futures import ThreadPoolExecutor

    # Whatever both threads use is imported here first: two threads importing one package
    # at once can meet a half-initialised module. The second thread alone imports matplotlib.
    import sklearn.calibration
    import sklearn.metrics  # noqa: F401

    features, target = split_features_target(test, schema)
    if len(target) == 0:
        raise TrainingError(f"no rows with a value in target {schema.target!r} to evaluate on")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="conveyor-plots") as pool:
        # Importing matplotlib takes a while; it overlaps the prediction of the rows.
        pool.submit(_import_matplotlib)
        predictions = predict_rows(pipeline, features, target, task=task)
        sample = plot_rows(len(target))
        plotted = predictions if sample is None else predictions.rows(sample)
        drawn = pool.submit(save_prediction_plots, plotted, task=task, out_dir=plots_dir)
        evaluation = Evaluation(metrics=predictions.metrics(task), rows=len(target))
        importance = permutation_importances(
            pipeline, features, target, task=task, metric=metric, predictions=predictions
        )
        plots = drawn.result()
    plots.append(save_importance_plot(importance, plots_dir / "feature_importance.png"))
    return HeldOutReport(evaluation=evaluation, importance=importance, plots=plots)


def _import_matplotlib() -> None:
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401
