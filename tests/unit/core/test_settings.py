"""Runtime settings: tracking URI precedence, registry limits, the lock's wait, service URLs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from conveyor.settings import Settings, get_settings


def test_embedded_store_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = Settings().tracking_uri(tmp_path)
    assert uri == f"sqlite:///{tmp_path / '.conveyor' / 'mlflow.db'}"


def test_config_uri_beats_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert Settings().tracking_uri(tmp_path, "http://mlflow:5000") == "http://mlflow:5000"


def test_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert Settings().tracking_uri(tmp_path, "http://mlflow:5000") == "http://env:5000"


def test_registry_limits_become_mlflow_http_variables() -> None:
    settings = Settings(registry_timeout=5, registry_retries=2, registry_backoff=0)
    env = settings.mlflow_http_environment()
    assert env["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "5"
    assert env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
    assert env["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "0"


def test_registry_limits_apply_unless_the_user_set_mlflows_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from conveyor.registry.outages import apply_http_limits

    monkeypatch.setenv("CONVEYOR_REGISTRY_TIMEOUT", "7")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "")  # restored (removed) afterwards
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "9")
    get_settings.cache_clear()
    try:
        apply_http_limits()
    finally:
        get_settings.cache_clear()
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "9"


def test_a_negative_lock_timeout_is_refused() -> None:
    with pytest.raises(ValidationError, match="run_lock_timeout"):
        Settings(run_lock_timeout=-1)


@pytest.mark.parametrize("url", ["pushgateway:9091", "ftp://gw:21", "http://"])
def test_a_pushgateway_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="expected an http"):
        Settings(pushgateway_url=url)


def test_a_bad_variable_is_named_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from conveyor.errors import ConfigError

    monkeypatch.setenv("CONVEYOR_AIRFLOW_URL", "airflow:8080")
    get_settings.cache_clear()
    try:
        with pytest.raises(
            ConfigError, match=r"^invalid environment settings: CONVEYOR_AIRFLOW_URL: "
        ):
            get_settings()
    finally:
        get_settings.cache_clear()


def test_the_airflow_password_is_kept_secret() -> None:
    settings = Settings(airflow_password="hunter2-hunter2")
    assert "hunter2" not in repr(settings)
