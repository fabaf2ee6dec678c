"""`conveyor serve` refuses to start with one clear line when the model cannot be served."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests.integration.serving.conftest import CONVEYOR, MODEL, clean_env

from conveyor.registry.store import ModelRegistry

pytestmark = pytest.mark.integration


def serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CONVEYOR, "serve", "--port", "1", *args],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("model_uri", "expected"),
    [
        (f"models:/{MODEL}@nope", f"model '{MODEL}' has no alias 'nope' (aliases: champion)"),
        ("models:/no-such-model@champion", "no registered model named 'no-such-model'"),
        (f"models:/{MODEL}/7", f"model '{MODEL}' has no version '7' (versions: 1)"),
    ],
)
def test_unknown_model_alias_or_version_fails_with_one_line(
    store: tuple[ModelRegistry, str], tmp_path: Path, model_uri: str, expected: str
) -> None:
    registry, _ = store
    result = serve(tmp_path, "--model-uri", model_uri, "--tracking-uri", registry.tracking_uri)
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_store_fails_and_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "nowhere" / "mlflow.db"
    result = serve(
        tmp_path, "--model-uri", f"models:/{MODEL}@champion", "--tracking-uri", f"sqlite:///{db}"
    )
    assert result.returncode == 1
    assert f"no MLflow store at {db}" in result.stderr
    assert not db.parent.exists()


def test_non_registry_uri_is_a_usage_error(tmp_path: Path) -> None:
    result = serve(tmp_path, "--model-uri", "runs:/abc/model", "--tracking-uri", "sqlite:///x.db")
    assert result.returncode == 2
    assert "--model-uri" in result.stderr
    assert "not a registry model URI" in result.stderr


def test_default_model_needs_a_config(tmp_path: Path) -> None:
    result = serve(tmp_path)
    assert result.returncode == 2
    assert "pass --model-uri" in result.stderr


def test_default_model_is_the_config_name_at_champion_in_mlflow_tracking_uri(
    store: tuple[ModelRegistry, str], tmp_path: Path
) -> None:
    registry, _ = store
    config = tmp_path / "conveyor.yaml"
    config.write_text("name: churn\ndata:\n  source: data.csv\n  target: y\n", encoding="utf-8")
    result = subprocess.run(
        [CONVEYOR, "serve", "--port", "1"],
        cwd=tmp_path,
        env={**clean_env(), "MLFLOW_TRACKING_URI": registry.tracking_uri},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    # other tests may have registered more models in this store, in any order
    assert "no registered model named 'churn' (known: " in result.stderr
    assert MODEL in result.stderr.split("(known: ", 1)[1]
    assert not (tmp_path / ".conveyor").exists()


def test_feedback_beyond_loopback_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    uri = ("--model-uri", f"models:/{MODEL}@champion", "--tracking-uri", "sqlite:///x.db")
    result = serve(tmp_path, "--host", "0.0.0.0", *uri)
    assert result.returncode == 2
    assert "--host 0.0.0.0 listens beyond loopback, where POST /feedback needs" in result.stderr
    assert "CONVEYOR_FEEDBACK_TOKEN" in result.stderr and "--no-monitoring" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
