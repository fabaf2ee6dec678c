"""Evaluation plots: the expected PNG files per task, valid and non-trivial."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from conveyor.config import ModelSpec
from conveyor.data.schema import TableSchema, Task
from conveyor.errors import TrainingError
from conveyor.training.evaluate import Predictions
from conveyor.training.importance import PermutationImportance
from conveyor.training.plots import (
    draw_confusion_matrix,
    draw_importance,
    save_evaluation_plots,
    save_importance_plot,
)
from conveyor.training.train import train_model

if TYPE_CHECKING:
    from matplotlib.axes import Axes

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EXPECTED = {
    "binary": [
        "roc_curve.png",
        "pr_curve.png",
        "confusion_matrix.png",
        "calibration.png",
        "feature_importance.png",
    ],
    "multiclass": ["confusion_matrix.png", "feature_importance.png"],
    "regression": ["residuals.png", "predicted_vs_actual.png", "feature_importance.png"],
}
METRIC = {"binary": "roc_auc", "multiclass": "f1_macro", "regression": "rmse"}


def _assert_pngs(paths: list[Path], names: list[str]) -> None:
    assert [p.name for p in paths] == names
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC), path.name
        assert len(data) > 10_000, f"{path.name} is suspiciously small ({len(data)} bytes)"


@pytest.mark.parametrize(
    ("task", "model"),
    [("binary", "random_forest"), ("multiclass", "logistic_regression"), ("regression", "ridge")],
)
def test_each_task_writes_its_plots(
    task: Task,
    model: str,
    *,
    table: pd.DataFrame,
    holdout: pd.DataFrame,
    schemas: dict[str, TableSchema],
    tmp_path: Path,
) -> None:
    params = {"n_estimators": 30} if model == "random_forest" else {}
    pipeline = train_model(
        table,
        schema=schemas[task],
        task=task,
        models=[ModelSpec(type=model, params=params)],
        metric=METRIC[task],
        seed=0,
    ).pipeline
    paths = save_evaluation_plots(
        pipeline, holdout, schema=schemas[task], task=task, out_dir=tmp_path / "plots"
    )
    _assert_pngs(paths, EXPECTED[task])


@pytest.mark.usefixtures("needs_torch")
def test_a_model_without_own_importances_gets_every_plot(
    table: pd.DataFrame, holdout: pd.DataFrame, schemas: dict[str, TableSchema], tmp_path: Path
) -> None:
    pipeline = train_model(
        table,
        schema=schemas["binary"],
        task="binary",
        models=[ModelSpec(type="torch_mlp", params={"epochs": 5})],
        metric="roc_auc",
        seed=0,
    ).pipeline
    paths = save_evaluation_plots(
        pipeline,
        holdout,
        schema=schemas["binary"],
        task="binary",
        out_dir=tmp_path,
        max_rows=150,
    )
    _assert_pngs(paths, EXPECTED["binary"])


def test_no_rows_is_an_error(
    holdout: pd.DataFrame, schemas: dict[str, TableSchema], tmp_path: Path
) -> None:
    with pytest.raises(TrainingError, match="no rows"):
        save_evaluation_plots(
            object(), holdout.head(0), schema=schemas["binary"], task="binary", out_dir=tmp_path
        )


IMPORTANCE = PermutationImportance(
    mean={"x1": 0.12, "<script>": 0.01, r"gain $\undefined$": -0.002},
    std={"x1": 0.02, "<script>": 0.005, r"gain $\undefined$": 0.001},
    metric="roc_auc",
    rows=200,
    repeats=5,
)


def _drawn() -> Axes:
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    draw_importance(ax, IMPORTANCE)
    return ax


def test_the_importance_plot_names_its_method_on_the_x_axis() -> None:
    assert _drawn().get_xlabel() == (
        "permutation importance: drop in roc_auc on 200 held-out rows, 5 repeats"
    )


def test_the_importance_plot_draws_the_std_as_error_bars() -> None:
    from matplotlib.container import BarContainer

    bars = next(c for c in _drawn().containers if isinstance(c, BarContainer))
    assert bars.errorbar is not None
    segments = bars.errorbar.lines[2][0].get_segments()
    widths = sorted(round(float(s[1][0] - s[0][0]), 6) for s in segments)
    assert widths == [0.002, 0.01, 0.04]  # 2 x std per bar


def test_a_column_name_with_dollar_signs_is_drawn_as_text(tmp_path: Path) -> None:
    # Unescaped, matplotlib would parse $\undefined$ as mathtext and fail to draw.
    path = save_importance_plot(IMPORTANCE, tmp_path / "importance.png")
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_the_confusion_matrix_draws_scikit_learns_counts() -> None:
    from matplotlib.figure import Figure
    from sklearn.metrics import confusion_matrix

    rng = np.random.default_rng(0)
    classes = np.array(["high", "low", "mid"], dtype=object)
    proba = rng.dirichlet([1.0, 1.0, 1.0], size=300)
    target = rng.choice(["high", "low", "mid", "unheard-of"], size=300).astype(object)
    predictions = Predictions.from_outputs(target, proba, classes)
    ax = Figure().add_subplot()
    draw_confusion_matrix(ax, predictions)
    expected = confusion_matrix(target, predictions.predicted, labels=list(classes))
    np.testing.assert_array_equal(ax.images[0].get_array(), expected)
