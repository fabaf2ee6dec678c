"""ONNX export logged with a run and served back from a real MLflow store, verified only."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conveyor.config import ModelSpec
from conveyor.data.schema import TableSchema
from conveyor.registry.onnx_export import OnnxExport, export_onnx, frame_columns
from conveyor.registry.store import ModelRegistry
from conveyor.registry.tracking import onnx_tags
from conveyor.serving.onnx_model import load_onnx_model
from conveyor.serving.slot import schema_from_pipeline
from conveyor.training.train import build_pipeline

pytestmark = pytest.mark.integration

SCHEMA = TableSchema(target="churned", numeric=("age", "charges"), categorical=("plan",))
FEATURES = list(SCHEMA.features)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 300
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 12, n),
            "charges": rng.normal(70, 20, n),
            "plan": pd.Series(rng.choice(["basic", "premium", "gold"], n), dtype="str"),
        }
    )
    frame.loc[frame.index % 10 == 0, "plan"] = np.nan
    churn = (frame["age"] < 35) ^ (frame["plan"] == "basic")
    frame["churned"] = pd.Series(np.where(churn, "yes", "no"), dtype="str")
    return frame


@pytest.fixture(scope="module")
def pipeline(table: pd.DataFrame) -> Any:
    spec = ModelSpec(type="lightgbm", params={"n_estimators": 15, "verbose": -1, "n_jobs": 1})
    fitted = build_pipeline(spec, schema=SCHEMA, task="binary", seed=0)
    return fitted.fit(table[FEATURES], table["churned"])


@pytest.fixture(scope="module")
def export(pipeline: Any, table: pd.DataFrame) -> OnnxExport:
    return export_onnx(pipeline, table[FEATURES].tail(100), tolerance=1e-4, parity_rows=100)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    return ModelRegistry(f"sqlite:///{tmp_path_factory.mktemp('onnx-store') / 'mlflow.db'}")


def _log_and_register(
    registry: ModelRegistry, pipeline: Any, table: pd.DataFrame, export: OnnxExport, key: str
) -> Any:
    tags = {"conveyor.config_hash": "cfg", **onnx_tags(export)}
    run_id = registry.log_training_run(
        experiment="churn",
        run_name=f"onnx-{key}",
        params={"model": "lightgbm"},
        metrics={"roc_auc": 0.9},
        artifacts=[],
        pipeline=pipeline,
        input_example=table[FEATURES].head(5),
        dataset=table,
        dataset_name="churn",
        dataset_source="/data/churn.csv",
        dataset_digest="md5:0",
        target="churned",
        tags=tags,
        onnx=export,
    )
    return registry.register(name="churn", run_id=run_id, key=key, tags=tags)


def test_verified_export_is_loaded_back_and_answers_as_the_pipeline(
    registry: ModelRegistry, pipeline: Any, table: pd.DataFrame, export: OnnxExport
) -> None:
    assert export.status == "verified", export.reason
    info = _log_and_register(registry, pipeline, table, export, key="verified")

    assert registry.load_onnx(info) == export.model
    assert info.tags["conveyor.onnx"] == "verified"
    run = registry.client.get_run(info.run_id)
    assert run.data.tags["conveyor.onnx"] == "verified"
    assert float(run.data.tags["conveyor.onnx_max_abs_diff"]) <= 1e-4
    classes = tuple(pipeline.classes_.tolist())
    model = load_onnx_model(registry, info, schema_from_pipeline(pipeline), classes)
    assert model is not None
    rows = table[FEATURES].head(20)
    got = model.predict_columns(frame_columns(rows), probabilities=False)
    assert got.predictions == pipeline.predict(rows).tolist()


def test_failed_export_is_kept_for_inspection_but_never_returned(
    registry: ModelRegistry,
    pipeline: Any,
    table: pd.DataFrame,
    export: OnnxExport,
    tmp_path: Path,
) -> None:
    failed = replace(export, status="failed", reason="class probabilities differ by up to 0.2")
    info = _log_and_register(registry, pipeline, table, failed, key="failed")

    assert registry.load_onnx(info) is None
    assert load_onnx_model(registry, info, schema_from_pipeline(pipeline), ("no", "yes")) is None
    listed = {a.path for a in registry.client.list_artifacts(info.run_id, "onnx")}
    assert listed == {"onnx/model.onnx", "onnx/parity.json"}
    parity = registry.client.download_artifacts(info.run_id, "onnx/parity.json", str(tmp_path))
    report = json.loads(Path(parity).read_text(encoding="utf-8"))
    assert report["status"] == "failed" and "differ" in report["reason"]
    assert info.tags["conveyor.onnx"] == "failed"
    assert "differ" in info.tags["conveyor.onnx_reason"]


def test_run_without_export_has_no_onnx_model(
    registry: ModelRegistry, pipeline: Any, table: pd.DataFrame
) -> None:
    unsupported = OnnxExport("unsupported", "cannot convert X: TypeError: no converter")
    info = _log_and_register(registry, pipeline, table, unsupported, key="unsupported")

    assert registry.load_onnx(info) is None
    listed = {a.path for a in registry.client.list_artifacts(info.run_id, "onnx")}
    assert listed == {"onnx/parity.json"}


def test_a_replaced_onnx_graph_is_refused(
    registry: ModelRegistry, pipeline: Any, table: pd.DataFrame, export: OnnxExport
) -> None:
    from urllib.parse import urlparse

    from conveyor.errors import ModelIntegrityError

    info = _log_and_register(registry, pipeline, table, export, key="replaced-graph")
    root = urlparse(registry.client.get_run(info.run_id).info.artifact_uri).path
    graph = Path(root) / "onnx" / "model.onnx"
    graph.write_bytes(graph.read_bytes() + b"\0")
    with pytest.raises(ModelIntegrityError, match="ONNX graph differ from what was signed"):
        registry.load_onnx(info)
