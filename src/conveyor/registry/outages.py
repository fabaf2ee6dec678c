"""A registry that does not answer: bounded waits, and a retryable error when it happens.

MLflow's HTTP client waits 120 s per request and retries 7 times by default, minutes in
all, which would stall a run, the server's alias follower and its admin routes behind an
unresponsive tracking server. :func:`apply_http_limits` sets MLflow's own variables from
Conveyor's settings (``CONVEYOR_REGISTRY_TIMEOUT``, ``_RETRIES``, ``_BACKOFF``) unless the
user set them. :func:`registry_error` turns a library error into a
``RegistryUnavailableError`` (exit 75, retry) when it is transient, else a ``RegistryError``.
"""

from __future__ import annotations

import os

from conveyor.errors import RegistryError, RegistryUnavailableError
from conveyor.redaction import redact
from conveyor.settings import get_settings
from conveyor.transient import is_transient, root_reason

__all__ = ["apply_http_limits", "registry_error"]


def apply_http_limits() -> None:
    """Bound MLflow's HTTP timeouts and retries in this process (user values win).

    Raises:
        ConfigError: the ``CONVEYOR_REGISTRY_*`` settings are invalid.
    """
    for name, value in get_settings().mlflow_http_environment().items():
        os.environ.setdefault(name, value)


def registry_error(what: str, exc: BaseException, *, store: str | None = None) -> RegistryError:
    """The error to raise for a failed registry call.

    Args:
        what: what was being done ("registering model 'churn' from run 1f2e...").
        exc: the library's error.
        store: the tracking URI, named when the registry did not answer.

    Returns:
        A ``RegistryUnavailableError`` (exit 75) when the failure is transient (refused,
        timed out, HTTP 5xx, a locked database), else a ``RegistryError``; either with one
        line of the cause.
    """
    if not is_transient(exc):
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        return RegistryError(f"{what}: {line}")
    where = f"the MLflow registry at {redact(store)}" if store else "the MLflow registry"
    return RegistryUnavailableError(
        f"{what}: {where} did not answer or was busy ({root_reason(exc)}); a retry may succeed"
    )
