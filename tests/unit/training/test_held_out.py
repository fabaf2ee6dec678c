"""evaluate_held_out: the evaluate step's metrics, importance and plots, predicting once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conveyor.config import ModelSpec
from conveyor.data.schema import TableSchema
from conveyor.training.evaluate import evaluate_model, split_features_target
from conveyor.training.held_out import HeldOutReport, evaluate_held_out
from conveyor.training.importance import permutation_importances
from conveyor.training.train import train_model

BINARY_PLOTS = [
    "roc_curve.png",
    "pr_curve.png",
    "confusion_matrix.png",
    "calibration.png",
    "feature_importance.png",
]


@pytest.fixture(scope="module")
def pipeline(table: pd.DataFrame, schemas: dict[str, TableSchema]) -> object:
    return train_model(
        table,
        schema=schemas["binary"],
        task="binary",
        models=[ModelSpec(type="lightgbm", params={"n_estimators": 30, "verbose": -1})],
        metric="roc_auc",
        seed=0,
    ).pipeline


@pytest.fixture
def partly_labelled(holdout: pd.DataFrame) -> pd.DataFrame:
    """The held-out rows, every tenth without a target."""
    frame = holdout.copy()
    frame.loc[frame.index % 10 == 0, "binary"] = np.nan
    return frame


def _report(pipeline: object, test: pd.DataFrame, schema: TableSchema, out: Path) -> HeldOutReport:
    return evaluate_held_out(
        pipeline, test, schema=schema, task="binary", metric="roc_auc", plots_dir=out
    )


def test_the_metrics_are_those_of_evaluate_model(
    pipeline: object,
    partly_labelled: pd.DataFrame,
    schemas: dict[str, TableSchema],
    tmp_path: Path,
) -> None:
    report = _report(pipeline, partly_labelled, schemas["binary"], tmp_path)
    alone = evaluate_model(pipeline, partly_labelled, schema=schemas["binary"], task="binary")
    assert report.evaluation == alone


def test_the_importance_is_that_of_permutation_importances_on_the_labelled_rows(
    pipeline: object,
    partly_labelled: pd.DataFrame,
    schemas: dict[str, TableSchema],
    tmp_path: Path,
) -> None:
    report = _report(pipeline, partly_labelled, schemas["binary"], tmp_path)
    features, target = split_features_target(partly_labelled, schemas["binary"])
    alone = permutation_importances(pipeline, features, target, task="binary", metric="roc_auc")
    assert (report.importance.mean, report.importance.std, report.importance.rows) == (
        alone.mean,
        alone.std,
        alone.rows,
    )


def test_every_plot_of_the_task_is_written(
    pipeline: object, holdout: pd.DataFrame, schemas: dict[str, TableSchema], tmp_path: Path
) -> None:
    report = _report(pipeline, holdout, schemas["binary"], tmp_path / "plots")
    assert [p.name for p in report.plots] == BINARY_PLOTS
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in report.plots)
