"""Settings of one serving process: which model, from where, request limits, updates, shutdown."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from conveyor.config import RoutingConfig
from conveyor.errors import ConfigError
from conveyor.http_guard import MIN_TOKEN_CHARS, require_token_beyond_loopback
from conveyor.registry.source import BUNDLE_SCHEME, is_bundle_uri

__all__ = [
    "ADMIN_TOKEN_ENV",
    "DEFAULT_BATCH_MAX_ROWS",
    "DEFAULT_BATCH_MAX_WAIT_MS",
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_DRAIN_SECONDS",
    "DEFAULT_FEEDBACK_MAX_BODY_BYTES",
    "DEFAULT_GRACEFUL_TIMEOUT",
    "DEFAULT_MAX_BATCH_ROWS",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_POLL_INTERVAL",
    "FEEDBACK_TOKEN_ENV",
    "MIN_ADMIN_TOKEN_CHARS",
    "Runtime",
    "ServingSettings",
    "load_serving",
]

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_BATCH_ROWS = 10_000
DEFAULT_POLL_INTERVAL = 30.0
DEFAULT_DRAIN_SECONDS = 5.0
DEFAULT_GRACEFUL_TIMEOUT = 20
DEFAULT_BATCH_MAX_ROWS = 256
DEFAULT_BATCH_MAX_WAIT_MS = 10.0
DEFAULT_MAX_CONCURRENCY = 256
DEFAULT_FEEDBACK_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_BODY_TIMEOUT = 10.0
MIN_ADMIN_TOKEN_CHARS = MIN_TOKEN_CHARS
ADMIN_TOKEN_ENV = "CONVEYOR_ADMIN_TOKEN"
FEEDBACK_TOKEN_ENV = "CONVEYOR_FEEDBACK_TOKEN"

Runtime = Literal["auto", "onnx", "pyfunc"]


class ServingSettings(BaseSettings):
    """What a serving process loads and how much it accepts per request.

    Read from ``CONVEYOR_SERVE_*`` environment variables when built by
    :func:`load_serving` (the ``uvicorn --factory`` path); ``conveyor serve`` builds it
    from its options.

    Attributes:
        model_uri: ``models:/<name>@<alias>`` or ``models:/<name>/<version>``; models are
            only ever loaded from the configured registry, or from a bundle exported from
            it (``bundle:/<path>``, what a baked image holds).
        tracking_uri: the MLflow tracking/registry URI holding the model.
        max_body_bytes: larger prediction request bodies are refused with 413.
        max_batch_rows: larger batches are refused with 422, as soon as parsing counts
            one row too many.
        feedback_max_body_bytes: larger ``POST /feedback`` bodies are refused with 413.
        body_timeout: seconds a request body may take to arrive; a slower one is refused
            with 408 and its connection closed.
        poll_interval: seconds between checks of the alias in ``model_uri`` (0: never; a
            URI naming a version is never polled).
        drain_seconds: after SIGTERM, how long ``/readyz`` answers 503 while requests are
            still served, so load balancers stop sending traffic before the server stops.
        graceful_timeout: after the drain, seconds in-flight requests get to finish.
        admin_token: bearer token of the ``/admin`` endpoints, from ``CONVEYOR_ADMIN_TOKEN``
            (``CONVEYOR_SERVE_ADMIN_TOKEN`` is read too); at least 16 characters. None: the
            admin endpoints are off and answer 404.
        feedback_token: bearer token ``POST /feedback`` requires, from
            ``CONVEYOR_FEEDBACK_TOKEN``; at least 16 characters. None: feedback is open,
            which ``conveyor serve`` allows on a loopback address only.
        runtime: ``auto`` (ONNX Runtime when the version has a parity-verified ONNX model,
            else the pipeline), ``onnx`` (required) or ``pyfunc`` (always the pipeline).
        batch_max_rows: most rows concurrent requests share in one predict call (1: no
            batching).
        batch_max_wait_ms: the most a batch waits for the concurrent requests it expects
            (0: never wait; requests that queue behind a running predict are batched
            anyway). The wait is also capped at half the recent predict time, so a fast
            model barely waits, and a lone client never does.
        max_concurrency: prediction requests in progress at once; more are refused with
            503 and ``Retry-After`` (health, metrics and admin are never refused).
        unknown_categories: ``accept`` a category value the model never saw in training
            (its encoder maps it to the "infrequent" level; it is counted in
            ``conveyor_unknown_category_values_total``) or ``reject`` it with 422.
        monitoring: watch drift, prediction distributions and feedback (off: none of it).
        drift_window_rows: recent rows per version compared with the training profile.
        drift_interval: seconds between drift evaluations of the windows.
        feedback_rows: rows of recent predictions kept for ``POST /feedback``.
        online_rows: labelled rows per version behind the online metrics.
        routing: traffic between the served model and a second one (``serving.routing``
            of the project config; ``CONVEYOR_SERVE_ROUTING`` as JSON).
    """

    model_config = SettingsConfigDict(
        env_prefix="CONVEYOR_SERVE_", extra="ignore", frozen=True, populate_by_name=True
    )

    model_uri: str = Field(
        description="models:/<name>@<alias>, models:/<name>/<version> or bundle:/<path>."
    )
    tracking_uri: str = Field(description="MLflow tracking and registry URI.")
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, gt=0, description="Body limit (bytes).")
    max_batch_rows: int = Field(DEFAULT_MAX_BATCH_ROWS, gt=0, description="Rows per request.")
    feedback_max_body_bytes: int = Field(
        DEFAULT_FEEDBACK_MAX_BODY_BYTES, gt=0, description="POST /feedback body limit (bytes)."
    )
    body_timeout: float = Field(
        DEFAULT_BODY_TIMEOUT, gt=0, description="Seconds a request body may take to arrive."
    )
    poll_interval: float = Field(
        DEFAULT_POLL_INTERVAL, ge=0, description="Seconds between alias checks (0: off)."
    )
    drain_seconds: float = Field(
        DEFAULT_DRAIN_SECONDS, ge=0, description="Not-ready delay after SIGTERM (seconds)."
    )
    graceful_timeout: int = Field(
        DEFAULT_GRACEFUL_TIMEOUT, ge=0, description="In-flight requests' time after the drain."
    )
    admin_token: SecretStr | None = Field(
        None,
        validation_alias=ADMIN_TOKEN_ENV,
        description="Bearer token for /admin endpoints (unset: they are off).",
    )
    feedback_token: SecretStr | None = Field(
        None,
        validation_alias=FEEDBACK_TOKEN_ENV,
        description="Bearer token for POST /feedback (unset: open; loopback only).",
    )

    runtime: Runtime = Field("auto", description="auto, onnx or pyfunc.")
    batch_max_rows: int = Field(
        DEFAULT_BATCH_MAX_ROWS, gt=0, description="Rows per shared predict call (1: off)."
    )
    batch_max_wait_ms: float = Field(
        DEFAULT_BATCH_MAX_WAIT_MS, ge=0, le=1000, description="Most a batch waits for company (ms)."
    )
    max_concurrency: int = Field(
        DEFAULT_MAX_CONCURRENCY, gt=0, description="Prediction requests in progress at once."
    )
    unknown_categories: Literal["accept", "reject"] = Field(
        "accept", description="accept (and count) or reject unseen category values."
    )
    monitoring: bool = Field(True, description="Drift windows, distributions, feedback.")
    drift_window_rows: int = Field(5000, ge=1, description="Rows per drift window.")
    drift_interval: float = Field(10.0, gt=0, description="Seconds between drift evaluations.")
    feedback_rows: int = Field(100_000, ge=1, description="Predictions kept for feedback.")
    online_rows: int = Field(1000, ge=1, description="Labelled rows per online metric.")
    routing: RoutingConfig = Field(
        default_factory=RoutingConfig, description="single, split or shadow routing."
    )

    @field_validator("model_uri")
    @classmethod
    def _registry_uri(cls, value: str) -> str:
        if is_bundle_uri(value):  # an exported version (a baked image)
            if not value.removeprefix(BUNDLE_SCHEME).startswith("/"):
                raise ValueError(f"{value!r}: a bundle URI names an absolute path, bundle:/...")
            return value
        ref = value.removeprefix("models:/")
        if not value.startswith("models:/") or not ref or ref.startswith(("/", "@")):
            raise ValueError(
                f"{value!r} is not a registry model URI; use models:/<name>@<alias>, "
                "models:/<name>/<version> or bundle:/<path>"
            )
        return value

    @field_validator("admin_token", "feedback_token")
    @classmethod
    def _strong_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(f"the token must have at least {MIN_TOKEN_CHARS} characters")
        return value

    def check_binding(self, host: str) -> None:
        """Refuse to listen beyond loopback while ``POST /feedback`` takes anyone's labels.

        Args:
            host: the address the server will listen on.

        Raises:
            ConfigError: ``host`` is not a loopback address, monitoring is on and no
                feedback token is set.
        """
        if self.monitoring:
            require_token_beyond_loopback(
                host,
                None if self.feedback_token is None else self.feedback_token.get_secret_value(),
                variable=FEEDBACK_TOKEN_ENV,
                endpoint="POST /feedback",
                alternative=", or serve with --no-monitoring",
            )


def _variable(loc: tuple[int | str, ...]) -> str:
    name = ".".join(str(p) for p in loc).upper()
    return name if name.startswith("CONVEYOR_") else f"CONVEYOR_SERVE_{name}"


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
        problems = "; ".join(f"{_variable(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid serving settings: {problems}") from exc
