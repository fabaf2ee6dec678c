"""Serving from an exported bundle (what a baked image holds): the same answers as the
registry's version, no registry needed, and altered files refused."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from tests.integration.serving.conftest import (
    CONVEYOR,
    FEATURES,
    clean_env,
    launch,
    make_table,
    register_conveyor_model,
)

from conveyor.errors import ModelIntegrityError, RegistryError
from conveyor.registry.bundle import ModelBundle, export_bundle
from conveyor.registry.store import ModelRegistry
from conveyor.serving.settings import ServingSettings
from conveyor.serving.slot import load_slot

pytestmark = pytest.mark.integration

BUNDLED = "bundle-test"
NO_STORE = "sqlite:////nonexistent/conveyor/mlflow.db"


@pytest.fixture(scope="module")
def bundled(
    store: tuple[ModelRegistry, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, Path]:
    """Conveyor's pipeline with a verified ONNX export and a profile, exported."""
    registry, _ = store
    pipeline, version = register_conveyor_model(
        registry, make_table(n=300, seed=61), name=BUNDLED, key="b-1", onnx=True, profile=True
    )
    folder = tmp_path_factory.mktemp("bundle") / "model"
    export_bundle(registry, registry.get_version(BUNDLED, version), folder)
    return pipeline, folder


def messy_rows() -> pd.DataFrame:
    rows = make_table(n=30, seed=62)[FEATURES]
    rows.loc[rows.index % 5 == 0, "job"] = np.nan
    rows.loc[rows.index % 7 == 0, "job"] = "astronaut"  # a level training never saw
    return rows


def copy_of(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "copy"))


def settings(folder: Path) -> ServingSettings:
    return ServingSettings(model_uri=f"bundle:{folder}", tracking_uri=NO_STORE)


def test_bundle_holds_model_onnx_profile_and_record(bundled: tuple[Any, Path]) -> None:
    _, folder = bundled
    held = {p.name for p in folder.iterdir()}
    assert {"model", "onnx", "profile.json", "version.json"} <= held


def test_record_carries_the_version_and_its_lineage(bundled: tuple[Any, Path]) -> None:
    _, folder = bundled
    record = json.loads((folder / "version.json").read_text(encoding="utf-8"))
    assert record["version"]["name"] == BUNDLED
    assert record["lineage"]["run"]["run_id"] == record["version"]["run_id"]


def test_pipeline_from_the_bundle_answers_like_the_original(bundled: tuple[Any, Path]) -> None:
    pipeline, folder = bundled
    loaded = ModelBundle(folder).load_pipeline(f"bundle:{folder}")
    rows = messy_rows()
    np.testing.assert_array_equal(loaded.predict(rows), pipeline.predict(rows))


def test_slot_from_the_bundle_uses_its_onnx_graph(bundled: tuple[Any, Path]) -> None:
    assert load_slot(settings(bundled[1])).runtime == "onnx"


def test_slot_from_the_bundle_watches_drift_with_its_profile(bundled: tuple[Any, Path]) -> None:
    assert load_slot(settings(bundled[1])).profile is not None


def test_altered_model_files_are_refused(bundled: tuple[Any, Path], tmp_path: Path) -> None:
    folder = copy_of(bundled[1], tmp_path)
    (folder / "model" / "model.skops").write_bytes(b"not the signed model")
    with pytest.raises(ModelIntegrityError, match="model files"):
        ModelBundle(folder).load_pipeline(f"bundle:{folder}")


def test_altered_onnx_graph_is_refused(bundled: tuple[Any, Path], tmp_path: Path) -> None:
    folder = copy_of(bundled[1], tmp_path)
    (folder / "onnx" / "model.onnx").write_bytes(b"not the signed graph")
    bundle = ModelBundle(folder)
    with pytest.raises(ModelIntegrityError, match="ONNX"):
        bundle.load_onnx(bundle.info)


def test_a_record_without_signature_is_refused(bundled: tuple[Any, Path], tmp_path: Path) -> None:
    folder = copy_of(bundled[1], tmp_path)
    path = folder / "version.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    record["version"]["tags"].pop("conveyor.signature")
    path.write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(ModelIntegrityError, match="not signed"):
        ModelBundle(folder).load_pipeline(f"bundle:{folder}")


def test_a_configured_key_checks_the_signature_again(
    bundled: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_SIGNING_KEY", "a-different-key-of-at-least-32-chars")
    folder = bundled[1]
    with pytest.raises(ModelIntegrityError):
        ModelBundle(folder).load_pipeline(f"bundle:{folder}")


def test_a_folder_without_bundle_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no model bundle"):
        ModelBundle(tmp_path)


def test_the_registry_holds_no_other_version_for_a_bundle(bundled: tuple[Any, Path]) -> None:
    with pytest.raises(RegistryError, match="holds model"):
        ModelBundle(bundled[1]).get_version(BUNDLED, "999")


def test_serve_answers_from_a_bundle_with_no_registry(
    bundled: tuple[Any, Path], tmp_path: Path
) -> None:
    pipeline, folder = bundled
    rows = messy_rows()
    options = ("--poll-interval", "0", "--drain-seconds", "0")
    with launch(NO_STORE, f"bundle:{folder}", tmp_path, *options) as (_, url, _):
        payload = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
        response = httpx.post(f"{url}/invocations", json=payload, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == pipeline.predict(rows).tolist()


def test_serve_names_a_missing_bundle(tmp_path: Path) -> None:
    result = subprocess.run(
        [CONVEYOR, "serve", "--model-uri", f"bundle:{tmp_path / 'absent'}", "--port", "1"],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "no model bundle" in result.stderr
