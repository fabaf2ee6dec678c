"""Evaluation plots: the expected PNG files per task, valid and non-trivial."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from conveyor.config import ModelSpec
from conveyor.data.schema import TableSchema, Task
from conveyor.errors import TrainingError
from conveyor.training.plots import save_evaluation_plots
from conveyor.training.train import train_model

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
def test_model_without_importances_falls_back_to_permutation(
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
