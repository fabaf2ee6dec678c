"""Settings of one serving process: which model, from which registry, and the request limits."""

from __future__ import annotations

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from conveyor.errors import ConfigError

__all__ = ["DEFAULT_MAX_BATCH_ROWS", "DEFAULT_MAX_BODY_BYTES", "ServingSettings", "load_serving"]

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_BATCH_ROWS = 10_000


class ServingSettings(BaseSettings):
    """What a serving process loads and how much it accepts per request.

    Read from ``CONVEYOR_SERVE_*`` environment variables when built by
    :func:`load_serving` (the ``uvicorn --factory`` path); ``conveyor serve`` builds it
    from its options.

    Attributes:
        model_uri: ``models:/<name>@<alias>`` or ``models:/<name>/<version>``; models are
            only ever loaded from the configured registry.
        tracking_uri: the MLflow tracking/registry URI holding the model.
        max_body_bytes: larger request bodies are refused with 413.
        max_batch_rows: larger batches are refused with 422.
    """

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_SERVE_", extra="ignore", frozen=True)

    model_uri: str = Field(description="models:/<name>@<alias> or models:/<name>/<version>.")
    tracking_uri: str = Field(description="MLflow tracking and registry URI.")
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, gt=0, description="Body limit (bytes).")
    max_batch_rows: int = Field(DEFAULT_MAX_BATCH_ROWS, gt=0, description="Rows per request.")

    @field_validator("model_uri")
    @classmethod
    def _registry_uri(cls, value: str) -> str:
        ref = value.removeprefix("models:/")
        if not value.startswith("models:/") or not ref or ref.startswith(("/", "@")):
            raise ValueError(
                f"{value!r} is not a registry model URI; use models:/<name>@<alias> or "
                "models:/<name>/<version>"
            )
        return value


def load_serving() -> ServingSettings:
    """Serving settings from ``CONVEYOR_SERVE_*`` environment variables.

    Returns:
        The validated settings.

    Raises:
        ConfigError: a variable is missing or invalid (the message names it).
    """
    try:
        return ServingSettings()  # type: ignore[call-arg]  # fields come from the environment
    except ValidationError as exc:
        problems = "; ".join(
            f"CONVEYOR_SERVE_{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigError(f"invalid serving settings: {problems}") from exc
