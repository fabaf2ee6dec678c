"""A real MLflow SQLite store shared by the registry tests, and runs logged into it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from conveyor.registry.store import ModelRegistry

FEATURES = ["age", "hours", "job"]
TARGET = "income"
DIGEST = "md5:0123456789abcdef"


@pytest.fixture(scope="package", autouse=True)
def clean_cwd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run from an empty folder and check MLflow wrote nothing there (no default store)."""
    folder = tmp_path_factory.mktemp("cwd")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        yield
    assert sorted(p.name for p in folder.iterdir()) == []


@pytest.fixture(scope="package")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlflow-store")


@pytest.fixture(scope="package")
def registry(store_dir: Path) -> ModelRegistry:
    return ModelRegistry(f"sqlite:///{store_dir / 'mlflow.db'}")


@pytest.fixture(scope="package")
def table() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 240
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 12, n),
            "hours": rng.normal(38, 6, n),
            "job": pd.Series(rng.choice(["clerk", "nurse", "smith"], n), dtype="str"),
        }
    )
    frame[TARGET] = np.where((frame["age"] > 40) ^ (frame["job"] == "nurse"), ">50K", "<=50K")
    frame[TARGET] = frame[TARGET].astype("str")
    return frame


def fit(estimator: Any, table: pd.DataFrame) -> Pipeline:
    """The shape of every Conveyor model: preprocessing and estimator in one Pipeline."""
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "hours"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["job"]),
        ]
    )
    labels = (table[TARGET] == ">50K").astype(int)
    return Pipeline([("preprocess", pre), ("model", estimator)]).fit(table[FEATURES], labels)


@pytest.fixture(scope="package")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("artifacts")
    plot = folder / "roc_curve.png"
    plot.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    report = folder / "metrics.json"
    report.write_text(json.dumps({"roc_auc": 0.9}), encoding="utf-8")
    return [plot, report]


LogRun = Callable[..., str]


@pytest.fixture(scope="package")
def log_run(registry: ModelRegistry, table: pd.DataFrame, artifacts: list[Path]) -> LogRun:
    """Log a training run with sensible defaults; keyword arguments override them."""

    def log(pipeline: Any, **overrides: Any) -> str:
        request: dict[str, Any] = {
            "experiment": "adult-income",
            "run_name": "conveyor-test",
            "params": {"model": "lightgbm", "model.params": {"n_estimators": 10}, "seed": 42},
            "metrics": {"roc_auc": 0.91, "accuracy": 0.85},
            "artifacts": artifacts,
            "pipeline": pipeline,
            "input_example": table[FEATURES].head(5),
            "dataset": table,
            "dataset_name": "adult-income",
            "dataset_source": "/data/adult.csv",
            "dataset_digest": DIGEST,
            "target": TARGET,
            "tags": {"conveyor.data_digest": DIGEST, "conveyor.config_hash": "cfg123"},
        }
        request.update(overrides)
        return registry.log_training_run(**request)

    return log


@pytest.fixture(scope="package")
def lightgbm_pipeline(table: pd.DataFrame) -> Pipeline:
    import lightgbm

    return fit(lightgbm.LGBMClassifier(n_estimators=10, verbose=-1), table)


@pytest.fixture(scope="package")
def lightgbm_run(log_run: LogRun, lightgbm_pipeline: Pipeline) -> str:
    return log_run(lightgbm_pipeline, run_name="lightgbm")


@pytest.fixture(scope="package")
def fit_pipeline(table: pd.DataFrame) -> Callable[[Any], Pipeline]:
    return lambda estimator: fit(estimator, table)


Register = Callable[[str], str]


@pytest.fixture(scope="package")
def register(registry: ModelRegistry) -> Register:
    """Register a run's model as a new version of ``logged``; returns ``models:/logged/<n>``."""

    def add(run_id: str) -> str:
        info = registry.register(name="logged", run_id=run_id, key=run_id, tags={})
        return info.uri

    return add
