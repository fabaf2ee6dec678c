"""Which failures are transient: a service that did not answer, timed out or was busy.

A transient failure may succeed when retried, so the CLI exits 75 (``EX_TEMPFAIL``) for
it and orchestrators retry: a refused or reset connection, a timeout, an unknown host,
HTTP 5xx or 429 after the client's own retries, a locked SQLite database, an object
store asking to slow down. Libraries wrap these in their own types (MLflow's
``MlflowException``, botocore's ``EndpointConnectionError``, requests' ``RetryError``), so
the whole chain of causes is walked. Libraries are only looked up if already imported: an
exception cannot come from a module that was never loaded.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

__all__ = ["causes", "is_transient"]

# MLflow's error codes for a busy or unavailable backend (a locked or overloaded database).
_BUSY_CODES = frozenset({"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"})
# S3-compatible stores' codes for "try again".
_RETRY_CODES = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling"}
)
_BUSY_TEXT = ("database is locked", "database table is locked")


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it was raised from or while handling, each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or one of its causes) is a failure that a retry may cure.

    Args:
        exc: the error as caught.

    Returns:
        True for a connection that failed or timed out, a busy backend, or a server error.

    Example:
        >>> is_transient(ConnectionRefusedError(111, "Connection refused"))
        True
        >>> is_transient(ValueError("bad metric"))
        False
    """
    kinds = _transient_types()
    return any(isinstance(e, kinds) or _busy(e) for e in causes(exc))


def _transient_types() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [ConnectionError, TimeoutError, socket.gaierror]
    requests = sys.modules.get("requests.exceptions")
    if requests is not None:  # RetryError: 5xx / 429 answers until the retries ran out
        kinds += [requests.ConnectionError, requests.Timeout, requests.RetryError]
    urllib3 = sys.modules.get("urllib3.exceptions")
    if urllib3 is not None:
        kinds += [urllib3.MaxRetryError, urllib3.NewConnectionError, urllib3.ProtocolError]
    botocore = sys.modules.get("botocore.exceptions")
    if botocore is not None:
        kinds += [
            botocore.EndpointConnectionError,
            botocore.ConnectTimeoutError,
            botocore.ReadTimeoutError,
            botocore.ConnectionClosedError,
        ]
    return tuple(kinds)


def _busy(exc: BaseException) -> bool:
    """A busy backend: MLflow's error code, an S3 error code or HTTP status, a locked SQLite."""
    if str(getattr(exc, "error_code", "")) in _BUSY_CODES:
        return True
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore's ClientError
        error = response.get("Error", {})
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if error.get("Code") in _RETRY_CODES or int(status or 0) >= 500:
            return True
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(exc, sqlite3.OperationalError):
        return any(text in str(exc) for text in _BUSY_TEXT)
    return False
