"""Serving settings: polling, drain and the admin token from CONVEYOR_ADMIN_TOKEN."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from conveyor.errors import ConfigError
from conveyor.serving.settings import ServingSettings, load_serving

URI = "models:/m@champion"
DB = "sqlite:///mlflow.db"


@pytest.fixture(autouse=True)
def no_conveyor_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CONVEYOR_ADMIN_TOKEN", "ADMIN_TOKEN", "CONVEYOR_SERVE_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_follow_every_30_s_drain_5_s_and_admin_is_off() -> None:
    settings = ServingSettings(model_uri=URI, tracking_uri=DB)
    assert (settings.poll_interval, settings.drain_seconds) == (30.0, 5.0)
    assert settings.admin_token is None


def test_admin_token_comes_from_conveyor_admin_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", "x" * 20)  # an unprefixed variable is never read
    assert ServingSettings(model_uri=URI, tracking_uri=DB).admin_token is None
    monkeypatch.setenv("CONVEYOR_ADMIN_TOKEN", "z" * 20)
    token = ServingSettings(model_uri=URI, tracking_uri=DB).admin_token
    assert token is not None and token.get_secret_value() == "z" * 20
    assert "z" * 20 not in repr(ServingSettings(model_uri=URI, tracking_uri=DB))


def test_a_short_admin_token_is_refused_with_its_variable_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONVEYOR_SERVE_MODEL_URI", URI)
    monkeypatch.setenv("CONVEYOR_SERVE_TRACKING_URI", DB)
    monkeypatch.setenv("CONVEYOR_ADMIN_TOKEN", "short")
    with pytest.raises(
        ConfigError,
        match=r"^invalid serving settings: CONVEYOR_ADMIN_TOKEN: .*at least 16 characters",
    ):
        load_serving()


@pytest.mark.parametrize("field", ["poll_interval", "drain_seconds", "graceful_timeout"])
def test_negative_durations_are_refused(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        ServingSettings(model_uri=URI, tracking_uri=DB, **{field: -1})
