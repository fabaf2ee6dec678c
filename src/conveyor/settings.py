"""Runtime settings from the environment: where state lives, service URIs, secrets.

The pipeline config (``conveyor.config``) says *what* to build; settings say *where*.
Precedence for the MLflow tracking URI, as MLflow users expect:
``MLFLOW_TRACKING_URI`` > the config's ``tracking_uri`` > the embedded SQLite store.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from conveyor.errors import ConfigError

__all__ = ["STATE_DIR", "Settings", "describe_errors", "get_settings", "quiet_dependencies"]

STATE_DIR = ".conveyor"


class Settings(BaseSettings):
    """Process-wide settings, read once from ``CONVEYOR_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_", extra="ignore")

    project_dir: Path | None = Field(
        None, description="Project root holding .conveyor/; default: the config file's folder."
    )
    mlflow_tracking_uri: str | None = Field(
        None, validation_alias="MLFLOW_TRACKING_URI", description="Overrides every other URI."
    )
    dvc_remote: str | None = Field(None, description="Overrides versioning.remote.")
    admin_token: str | None = Field(None, description="Bearer token for admin endpoints.")
    webhook_token: str | None = Field(
        None, description="Bearer token for POST /alerts of the retraining receiver."
    )
    run_lock_timeout: float = Field(
        3600.0,
        ge=0,
        description=(
            "Seconds a run (or promote, rollback) waits for another one on the same project"
            " to finish before giving up with exit 75; 0 gives up at once."
        ),
    )
    registry_timeout: int = Field(
        15, ge=1, description="Seconds one request to an MLflow tracking server may take."
    )
    registry_retries: int = Field(
        3, ge=0, le=10, description="Retries of a failed MLflow server request (refused, 5xx)."
    )
    registry_backoff: int = Field(
        1, ge=0, le=120, description="Backoff factor between retries: factor * 2**n seconds."
    )
    metrics_textfile: str | None = Field(
        None,
        description=(
            "Where `conveyor run` writes its pipeline metrics for node-exporter: a file, a"
            " folder (ending in /), or off; default .conveyor/metrics/conveyor_pipeline.prom."
        ),
    )
    pushgateway_url: str | None = Field(
        None, description="Also push the pipeline metrics to this Pushgateway (http(s) URL)."
    )
    airflow_url: str | None = Field(
        None, description="Airflow 3 API server of the retraining trigger's airflow launcher."
    )
    airflow_username: str | None = Field(None, description="User for Airflow's /auth/token.")
    airflow_password: SecretStr | None = Field(None, description="Its password.")

    @field_validator("pushgateway_url", "airflow_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http(s) URL with a host, e.g. http://pushgateway:9091")
        return value.strip()

    def mlflow_http_environment(self) -> dict[str, str]:
        """MLflow's HTTP client variables for these settings (timeout, retries, backoff)."""
        return {
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(self.registry_timeout),
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(self.registry_retries),
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(self.registry_backoff),
            "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
        }

    def project_root(self, default: Path) -> Path:
        """The project folder: CONVEYOR_PROJECT_DIR, else ``default`` (the config's folder)."""
        return (self.project_dir or default).resolve()

    def tracking_uri(self, project_dir: Path, configured: str | None = None) -> str:
        """The MLflow tracking URI in force for a project.

        Args:
            project_dir: the folder whose ``.conveyor/`` holds the embedded store
                (``project_root`` applied; CONVEYOR_PROJECT_DIR wins).
            configured: the config's ``tracking_uri``, if any.
        """
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        if configured:
            return configured
        return f"sqlite:///{self.project_root(project_dir) / STATE_DIR / 'mlflow.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings (cached; call ``get_settings.cache_clear()`` in tests)."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(f"invalid environment settings: {describe_errors(exc)}") from exc


def describe_errors(exc: ValidationError) -> str:
    """One line naming each bad variable and the problem (never the value: it may be secret).

    Example:
        >>> try:
        ...     Settings(pushgateway_url="gateway:9091")
        ... except ValidationError as exc:
        ...     print(describe_errors(exc))
        CONVEYOR_PUSHGATEWAY_URL: expected an http(s) URL with a host, e.g. http://pushgateway:9091
    """
    parts = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        alias = (
            Settings.model_fields[field].validation_alias
            if field in Settings.model_fields
            else None
        )
        variable = alias if isinstance(alias, str) else f"CONVEYOR_{field.upper()}"
        parts.append(f"{variable}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def quiet_dependencies() -> None:
    """Turn off dependency telemetry and chatter; our users run offline too."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
