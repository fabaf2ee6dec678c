"""Models are data: versions are signed at registration and checked before anything loads."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from tests.integration.registry.conftest import FEATURES, LogRun, Register

from conveyor.errors import ModelIntegrityError, RegistryError
from conveyor.registry.signing import (
    KEY_ENV,
    MODEL_DIGEST_TAG,
    PREVIOUS_KEYS_ENV,
    SIGNATURE_TAG,
    key_file,
)
from conveyor.registry.store import ModelRegistry, ModelVersionInfo
from conveyor.registry.tracking import fluent_store
from conveyor.registry.versions import CHAMPION

pytestmark = pytest.mark.integration


class Planted:
    """Unpickling this makes a folder: proof that code from the artifact ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.mkdir, (str(self.marker),)


def model_folder(registry: ModelRegistry, info: ModelVersionInfo) -> Path:
    model_id = registry.client.get_run(info.run_id).data.tags["conveyor.model_id"]
    return Path(urlparse(registry.client.get_logged_model(model_id).artifact_location).path)


def plant_pickle(folder: Path, marker: Path) -> None:
    """Replace the model by a pickle that runs code, and point MLmodel at it."""
    (folder / "model.pkl").write_bytes(pickle.dumps(Planted(marker)))
    spec = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8"))
    flavor = spec["flavors"]["sklearn"]
    flavor.update(pickled_model="model.pkl", serialization_format="cloudpickle")
    flavor.pop("skops_trusted_types", None)
    (folder / "MLmodel").write_text(yaml.safe_dump(spec), encoding="utf-8")


@pytest.fixture
def version(
    registry: ModelRegistry, register: Register, log_run: LogRun, lightgbm_pipeline: Pipeline
) -> ModelVersionInfo:
    """A fresh signed version of ``logged`` (its own run, so tampering stays local)."""
    uri = register(log_run(lightgbm_pipeline, run_name="signed"))
    return registry.get_version("logged", uri.rsplit("/", 1)[1])


def test_a_registered_version_carries_its_digest_and_signature(
    version: ModelVersionInfo,
) -> None:
    assert len(version.tags[MODEL_DIGEST_TAG]) == 64
    assert version.tags[SIGNATURE_TAG].startswith("v1:")


def test_an_embedded_store_keeps_its_key_beside_the_database_readable_by_its_owner_only(
    registry: ModelRegistry, version: ModelVersionInfo
) -> None:
    path = key_file(registry.tracking_uri)
    assert path is not None
    assert path.stat().st_mode & 0o777 == 0o600


def test_the_planted_pickle_runs_code_when_mlflow_loads_it_unchecked(
    registry: ModelRegistry, version: ModelVersionInfo, tmp_path: Path
) -> None:
    import mlflow

    folder = model_folder(registry, version)
    marker = tmp_path / "ran"
    plant_pickle(folder, marker)
    mlflow.sklearn.load_model(str(folder))
    assert marker.is_dir()  # the attack is real: this is what the signature check prevents


def test_a_planted_pickle_is_refused_and_nothing_in_it_runs(
    registry: ModelRegistry, version: ModelVersionInfo, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    plant_pickle(model_folder(registry, version), marker)
    with pytest.raises(ModelIntegrityError, match="model files differ from what was signed"):
        registry.load_pipeline(version.uri)
    assert not marker.exists()


def test_a_widened_skops_allowlist_is_refused(
    registry: ModelRegistry, version: ModelVersionInfo
) -> None:
    mlmodel = model_folder(registry, version) / "MLmodel"
    spec = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    spec["flavors"]["sklearn"]["skops_trusted_types"].append("os.system")
    mlmodel.write_text(yaml.safe_dump(spec), encoding="utf-8")
    with pytest.raises(ModelIntegrityError, match="model files differ"):
        registry.load_pipeline(version.uri)


def test_a_signature_copied_from_another_version_is_refused(
    registry: ModelRegistry, version: ModelVersionInfo, lightgbm_run: str, register: Register
) -> None:
    other = registry.get_version("logged", register(lightgbm_run).rsplit("/", 1)[1])
    copied = {k: other.tags[k] for k in (MODEL_DIGEST_TAG, SIGNATURE_TAG)}
    registry.set_version_tags("logged", version.version, copied)
    with pytest.raises(ModelIntegrityError, match="signature"):
        registry.load_pipeline(version.uri)


def test_a_changed_digest_tag_is_refused(
    registry: ModelRegistry, version: ModelVersionInfo
) -> None:
    registry.set_version_tags("logged", version.version, {MODEL_DIGEST_TAG: "0" * 64})
    with pytest.raises(ModelIntegrityError, match="does not match its recorded digests"):
        registry.load_pipeline(version.uri)


def unsigned_version(registry: ModelRegistry, version: ModelVersionInfo) -> ModelVersionInfo:
    """A version created with MLflow's own client from a signed version's files."""
    with fluent_store(registry.tracking_uri):  # MLflow resolves models:/ sources globally
        created = registry.client.create_model_version(
            "logged", source=version.source, run_id=version.run_id
        )
    return registry.get_version("logged", str(created.version))


def test_an_unsigned_version_is_refused(registry: ModelRegistry, version: ModelVersionInfo) -> None:
    unsigned = unsigned_version(registry, version)
    with pytest.raises(ModelIntegrityError, match="is not signed"):
        registry.load_pipeline(unsigned.uri)


def test_an_unsigned_version_cannot_become_champion(
    registry: ModelRegistry, version: ModelVersionInfo
) -> None:
    registry.promote("logged", version.version)
    unsigned = unsigned_version(registry, version)
    with pytest.raises(ModelIntegrityError, match="is not signed"):
        registry.promote("logged", unsigned.version)
    champion = registry.get_alias("logged", CHAMPION)
    assert champion is not None and champion.version == version.version


def test_another_key_refuses_the_version(
    registry: ModelRegistry, version: ModelVersionInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "another-key-" + "x" * 32)
    with pytest.raises(ModelIntegrityError, match="not among the keys in force"):
        registry.load_pipeline(version.uri)


def test_a_previous_key_still_verifies_after_rotation(
    registry: ModelRegistry,
    version: ModelVersionInfo,
    monkeypatch: pytest.MonkeyPatch,
    lightgbm_pipeline: Pipeline,
    table: pd.DataFrame,
) -> None:
    path = key_file(registry.tracking_uri)
    assert path is not None
    monkeypatch.setenv(KEY_ENV, "the-new-key-" + "y" * 32)
    monkeypatch.setenv(PREVIOUS_KEYS_ENV, path.read_text(encoding="utf-8").strip())
    loaded = registry.load_pipeline(version.uri)
    np.testing.assert_array_equal(
        loaded.predict_proba(table[FEATURES]), lightgbm_pipeline.predict_proba(table[FEATURES])
    )


def test_a_short_key_is_a_config_error(
    registry: ModelRegistry, version: ModelVersionInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.errors import ConfigError

    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(ConfigError, match=f"{KEY_ENV}: a signing key needs at least 32"):
        registry.load_pipeline(version.uri)


def torch_pipeline(table: pd.DataFrame) -> Pipeline:
    torch = pytest.importorskip("torch", reason="torch is the optional [torch] extra")
    from sklearn.linear_model import LogisticRegression

    clip = {"a_min": torch.tensor(0.0), "a_max": torch.tensor(60.0)}
    labels = (table["income"] == ">50K").astype(int)
    return Pipeline(
        [("clip", FunctionTransformer(np.clip, kw_args=clip)), ("model", LogisticRegression())]
    ).fit(table[["age", "hours"]], labels)


def test_a_model_that_needs_pickle_is_refused_without_the_projects_consent(
    log_run: LogRun, table: pd.DataFrame
) -> None:
    pipeline = torch_pipeline(table)
    x = table[["age", "hours"]]
    with pytest.raises(RegistryError, match=r"registry\.allow_pickle: true"):
        log_run(pipeline, run_name="torch-refused", input_example=x.head(5), dataset=table)


def test_a_pickled_model_allowed_by_the_project_carries_the_risk_and_loads(
    registry: ModelRegistry, register: Register, log_run: LogRun, table: pd.DataFrame
) -> None:
    pipeline = torch_pipeline(table)
    x = table[["age", "hours"]]
    run_id = log_run(
        pipeline, run_name="torch", input_example=x.head(5), dataset=table, allow_pickle=True
    )
    uri = register(run_id)
    info = registry.get_version("logged", uri.rsplit("/", 1)[1])
    assert "runs code" in info.tags["conveyor.pickle_risk"]
    np.testing.assert_array_equal(
        registry.load_pipeline(uri).predict_proba(x), pipeline.predict_proba(x)
    )


def test_a_run_id_uri_is_not_loadable(registry: ModelRegistry, lightgbm_run: str) -> None:
    with pytest.raises(RegistryError, match="load a registered version"):
        registry.load_pipeline(f"runs:/{lightgbm_run}/model")
