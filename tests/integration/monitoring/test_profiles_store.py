"""Reference profiles on a real MLflow sqlite store: stored, read back, missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.errors import RegistryError
from conveyor.registry.profiles import load_reference_profile, log_reference_profile
from conveyor.registry.store import ModelRegistry, ModelVersionInfo

pytestmark = pytest.mark.integration


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}")


def _run_id(registry: ModelRegistry) -> str:
    experiment = registry.client.create_experiment(
        "profiles", artifact_location=(Path(registry.tracking_uri[10:]).parent / "art").as_uri()
    )
    return str(registry.client.create_run(experiment).info.run_id)


def test_a_logged_profile_reads_back_identical(registry: ModelRegistry) -> None:
    run_id = _run_id(registry)
    profile = {"format_version": 1, "features": {"age": {"kind": "numeric", "edges": [1.5]}}}
    log_reference_profile(registry, run_id, profile)
    info = ModelVersionInfo(name="churn", version="3", run_id=run_id)
    assert load_reference_profile(registry, info) == profile
    artifacts = [a.path for a in registry.client.list_artifacts(run_id, "reference")]
    assert artifacts == ["reference/profile.json"]


def test_a_version_without_a_profile_says_retrain(registry: ModelRegistry) -> None:
    info = ModelVersionInfo(name="churn", version="2", run_id=_run_id(registry))
    with pytest.raises(RegistryError, match=r"'churn' version 2.*no reference profile.*retrain"):
        load_reference_profile(registry, info)
