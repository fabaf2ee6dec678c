"""Training runs land in a real MLflow store with model, signature, example, data and lineage."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from tests.integration.registry.conftest import Register

from conveyor.errors import RegistryError
from conveyor.registry.store import ModelRegistry
from conveyor.registry.tracking import fluent_store

pytestmark = pytest.mark.integration

FEATURES = ["age", "hours", "job"]


def model_uri(registry: ModelRegistry, run_id: str) -> str:
    return str(registry.client.get_run(run_id).data.tags["conveyor.model_uri"])


def test_lightgbm_pipeline_loads_back_with_identical_predictions(
    registry: ModelRegistry,
    register: Register,
    lightgbm_run: str,
    lightgbm_pipeline: Pipeline,
    table: pd.DataFrame,
) -> None:
    loaded = registry.load_pipeline(register(lightgbm_run))
    np.testing.assert_array_equal(
        loaded.predict_proba(table[FEATURES]), lightgbm_pipeline.predict_proba(table[FEATURES])
    )


def test_xgboost_pipeline_loads_back_with_identical_predictions(
    registry: ModelRegistry,
    register: Register,
    log_run: Callable[..., str],
    fit_pipeline: Callable[[Any], Pipeline],
    table: pd.DataFrame,
) -> None:
    import xgboost

    pipeline = fit_pipeline(xgboost.XGBClassifier(n_estimators=8, max_depth=3))
    run_id = log_run(pipeline, run_name="xgboost", params={"model": "xgboost"})
    loaded = registry.load_pipeline(register(run_id))
    np.testing.assert_array_equal(
        loaded.predict_proba(table[FEATURES]), pipeline.predict_proba(table[FEATURES])
    )
    tags = registry.client.get_run(run_id).data.tags
    assert tags["conveyor.serialization"] == "skops"
    assert "xgboost.core.Booster" in tags["conveyor.serialization_reason"]


def test_model_has_signature_and_input_example(
    registry: ModelRegistry, lightgbm_run: str, table: pd.DataFrame, tmp_path: Path
) -> None:
    import mlflow
    from mlflow.models import Model

    uri = model_uri(registry, lightgbm_run)
    with fluent_store(registry.tracking_uri):  # models:/<id> resolves on the global store
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp_path))
    model = Model.load(local)
    assert model.signature is not None
    assert model.signature.inputs.input_names() == FEATURES
    example = model.load_input_example(local)
    assert isinstance(example, pd.DataFrame)
    assert list(example.columns) == FEATURES
    assert len(example) == 5
    flavor = model.flavors["sklearn"]
    assert flavor["serialization_format"] == "skops"
    assert "lightgbm.basic.Booster" in flavor["skops_trusted_types"]
    requirements = (Path(local) / "requirements.txt").read_text(encoding="utf-8")
    assert "lightgbm==" in requirements
    assert "skops==" in requirements


def test_run_records_params_metrics_artifacts_dataset_and_lineage(
    registry: ModelRegistry, lightgbm_run: str
) -> None:
    run = registry.client.get_run(lightgbm_run)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "lightgbm"
    assert run.data.params["model.params.n_estimators"] == "10"
    assert registry.run_metrics(lightgbm_run) == {"roc_auc": 0.91, "accuracy": 0.85}
    assert run.data.tags["conveyor.data_digest"] == "md5:0123456789abcdef"
    assert run.data.tags["conveyor.config_hash"] == "cfg123"
    files = {f.path for f in registry.client.list_artifacts(lightgbm_run, "plots")}
    files |= {f.path for f in registry.client.list_artifacts(lightgbm_run, "reports")}
    assert files == {"plots/roc_curve.png", "reports/metrics.json"}
    assert run.inputs is not None
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == "md5:0123456789abcdef"
    assert dataset_input.dataset.name == "adult-income"
    assert "/data/adult.csv" in dataset_input.dataset.source
    assert {(t.key, t.value) for t in dataset_input.tags} == {("mlflow.data.context", "training")}
    schema = json.loads(dataset_input.dataset.schema)["mlflow_colspec"]
    assert {c["name"] for c in schema} >= set(FEATURES)
    assert json.loads(dataset_input.dataset.profile)["num_rows"] > 0


def test_untrusted_object_fails_the_run_and_registers_nothing(
    registry: ModelRegistry,
    log_run: Callable[..., str],
    fit_pipeline: Callable[[Any], Pipeline],
    table: pd.DataFrame,
) -> None:
    from sklearn.linear_model import LogisticRegression

    pipeline = fit_pipeline(LogisticRegression())
    bad = Pipeline([("tweak", FunctionTransformer(lambda x: x)), *pipeline.steps])
    with pytest.raises(RegistryError, match=r"failed: cannot persist the model: type .*<lambda>"):
        log_run(bad, experiment="broken", run_name="with-lambda")
    experiment = registry.client.get_experiment_by_name("broken")
    assert experiment is not None
    (run,) = registry.client.search_runs([experiment.experiment_id])
    assert run.info.status == "FAILED"
    assert "conveyor.model_uri" not in run.data.tags
    with pytest.raises(RegistryError, match="is FAILED; only a finished run registers"):
        registry.register(name="broken", run_id=run.info.run_id, key="k", tags={})
    assert all(m["name"] != "broken" for m in registry.list_models())


def test_missing_artifact_fails_before_any_run_exists(
    registry: ModelRegistry, log_run: Callable[..., str], lightgbm_pipeline: Pipeline
) -> None:
    with pytest.raises(RegistryError, match=r"artifact not found: .*nope\.png"):
        log_run(lightgbm_pipeline, experiment="early", artifacts=[Path("/nonexistent/nope.png")])
    assert registry.client.get_experiment_by_name("early") is None


def test_logging_leaves_global_mlflow_state_and_stdout_alone(
    registry: ModelRegistry,
    register: Register,
    log_run: Callable[..., str],
    lightgbm_pipeline: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://elsewhere:5000")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    before = mlflow.get_tracking_uri()
    run_id = log_run(lightgbm_pipeline, run_name="quiet")
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://elsewhere:5000"
    assert "MLFLOW_REGISTRY_URI" not in os.environ
    assert mlflow.get_tracking_uri() == before
    assert mlflow.active_run() is None
    registry.load_pipeline(register(run_id))
    out, err = capfd.readouterr()
    assert out == ""
    assert "INFO mlflow" not in err
    assert "Downloading artifacts" not in err


def test_dataset_source_credentials_are_not_recorded(
    registry: ModelRegistry, log_run: Callable[..., str], lightgbm_pipeline: Pipeline
) -> None:
    run_id = log_run(
        lightgbm_pipeline,
        run_name="from-sql",
        dataset_digest="md5:sql-snapshot",  # MLflow keeps one source per (name, digest)
        dataset_source="postgresql://app:s3cret@db:5432/sales?table=adult",
    )
    inputs = registry.client.get_run(run_id).inputs
    assert inputs is not None
    (dataset_input,) = inputs.dataset_inputs
    assert "s3cret" not in dataset_input.dataset.source
    assert "postgresql://app:***@db:5432/sales" in dataset_input.dataset.source
