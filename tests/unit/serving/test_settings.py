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
    names = ("CONVEYOR_ADMIN_TOKEN", "ADMIN_TOKEN", "CONVEYOR_SERVE_ADMIN_TOKEN")
    for name in (*names, "CONVEYOR_FEEDBACK_TOKEN"):
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


def test_request_limits_default_to_1_mib_feedback_and_a_10_s_body_deadline() -> None:
    settings = ServingSettings(model_uri=URI, tracking_uri=DB)
    assert settings.feedback_max_body_bytes == 1024 * 1024
    assert settings.body_timeout == 10.0
    assert settings.feedback_token is None


def test_feedback_token_comes_from_conveyor_feedback_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_FEEDBACK_TOKEN", "f" * 20)
    token = ServingSettings(model_uri=URI, tracking_uri=DB).feedback_token
    assert token is not None and token.get_secret_value() == "f" * 20


def test_a_short_feedback_token_is_refused_with_its_variable_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONVEYOR_SERVE_MODEL_URI", URI)
    monkeypatch.setenv("CONVEYOR_SERVE_TRACKING_URI", DB)
    monkeypatch.setenv("CONVEYOR_FEEDBACK_TOKEN", "short")
    with pytest.raises(ConfigError, match=r"CONVEYOR_FEEDBACK_TOKEN: .*at least 16 characters"):
        load_serving()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "serving.internal"])
def test_feedback_beyond_loopback_without_a_token_refuses_to_start(host: str) -> None:
    settings = ServingSettings(model_uri=URI, tracking_uri=DB)
    with pytest.raises(ConfigError, match=f"--host {host} .*set CONVEYOR_FEEDBACK_TOKEN"):
        settings.check_binding(host)


@pytest.mark.parametrize(
    ("host", "options"),
    [
        ("127.0.0.1", {}),
        ("localhost", {}),
        ("0.0.0.0", {"feedback_token": "f" * 16}),
        ("0.0.0.0", {"monitoring": False}),
    ],
    ids=["loopback", "localhost", "with-a-token", "no-feedback-route"],
)
def test_loopback_a_token_or_no_monitoring_may_start(host: str, options: dict[str, object]) -> None:
    ServingSettings(model_uri=URI, tracking_uri=DB, **options).check_binding(host)  # type: ignore[arg-type]


def test_a_bundle_uri_with_an_absolute_path_is_accepted() -> None:
    settings = ServingSettings(model_uri="bundle:/opt/conveyor/model", tracking_uri="x")
    assert settings.model_uri == "bundle:/opt/conveyor/model"


def test_a_bundle_uri_with_a_relative_path_is_refused() -> None:
    with pytest.raises(ValidationError, match="absolute path"):
        ServingSettings(model_uri="bundle:model", tracking_uri="x")


def test_a_uri_of_another_scheme_is_refused_naming_the_forms() -> None:
    with pytest.raises(ValidationError, match="bundle:/<path>"):
        ServingSettings(model_uri="runs:/abc/model", tracking_uri="x")
