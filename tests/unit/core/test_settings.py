"""Runtime settings: tracking URI precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.settings import Settings


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
