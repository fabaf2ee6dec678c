"""Store URIs, params, artifact folders and redaction behave as users rely on (no MLflow)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.errors import RegistryError
from conveyor.registry.dataset_inputs import redact_uri
from conveyor.registry.store import ModelRegistry, ModelVersionInfo
from conveyor.registry.tracking import MAX_PARAM_VALUE, artifact_folder, flatten_params


def test_sqlite_store_gets_absolute_path_parent_folder_and_artifact_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    registry = ModelRegistry("sqlite:///state/nested/mlflow.db")
    db = tmp_path / "state" / "nested" / "mlflow.db"
    assert registry.tracking_uri == f"sqlite:///{db}"
    assert db.parent.is_dir()
    assert registry.artifact_root == (db.parent / "mlartifacts").as_uri()


def test_server_uris_are_kept_as_given() -> None:
    registry = ModelRegistry("http://mlflow:5000")
    assert registry.tracking_uri == "http://mlflow:5000"
    assert registry.artifact_root is None


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(RegistryError, match="needs a file path"):
        ModelRegistry("sqlite:///:memory:")


def test_ui_command_runs_mlflow_ui_on_this_store(tmp_path: Path) -> None:
    registry = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}")
    argv = registry.ui_command(port=5123)
    assert argv[:4] == [sys.executable, "-m", "mlflow", "ui"]
    assert argv[argv.index("--backend-store-uri") + 1] == registry.tracking_uri
    assert argv[argv.index("--default-artifact-root") + 1] == registry.artifact_root
    assert argv[argv.index("--port") + 1] == "5123"


def test_ui_command_on_a_server_says_to_open_it() -> None:
    with pytest.raises(RegistryError, match="is a tracking server"):
        ModelRegistry("https://mlflow.example.com").ui_command()


def test_importing_the_registry_does_not_import_mlflow() -> None:
    code = (
        "import sys, conveyor.registry.store, conveyor.registry.promotion;"
        "sys.exit('mlflow' in sys.modules or 'skops' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_flatten_params_nests_stringifies_and_truncates() -> None:
    flat = flatten_params(
        {
            "model": {"n_estimators": 100, "max_depth": None, "layers": [64, 32]},
            "task": "binary",
            "long": "x" * (MAX_PARAM_VALUE + 10),
        }
    )
    assert flat["model.n_estimators"] == "100"
    assert flat["model.max_depth"] == "null"
    assert flat["model.layers"] == "[64, 32]"
    assert flat["task"] == "binary"
    assert len(flat["long"]) == MAX_PARAM_VALUE
    assert flat["long"].endswith("...")


@pytest.mark.parametrize(
    ("name", "folder"),
    [("roc.png", "plots"), ("cm.PNG", "plots"), ("metrics.json", "reports"), ("v.html", "reports")],
)
def test_artifact_folder(name: str, folder: str) -> None:
    assert artifact_folder(Path(name)) == folder


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("postgresql://app:s3cret@db:5432/sales", "postgresql://app:***@db:5432/sales"),
        ("s3://bucket/data.parquet", "s3://bucket/data.parquet"),
        ("/data/adult.csv", "/data/adult.csv"),
    ],
)
def test_redact_uri_hides_passwords(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown


def test_model_version_info_to_dict() -> None:
    info = ModelVersionInfo("m", "3", "r1", ("champion",), {"k": "v"}, "2026-01-01T00:00:00+00:00")
    assert info.uri == "models:/m/3"
    assert info.to_dict()["aliases"] == ["champion"]
    assert info.to_dict()["tags"] == {"k": "v"}
