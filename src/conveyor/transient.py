"""Which failures are transient: a service that did not answer, timed out or was busy.

A transient failure may succeed when retried, so the CLI exits 75 (``EX_TEMPFAIL``) for
it and orchestrators retry: a refused or reset connection, a timeout, an unknown host,
HTTP 5xx or 429 after the client's own retries, a locked SQLite database, an object
store asking to slow down. Libraries wrap these in their own types (MLflow's
``MlflowException``, botocore's ``EndpointConnectionError``, requests' ``RetryError``), so
the whole chain of causes is walked; where a library keeps only the text of the causes
(MLflow gathers failed artifact transfers into one message), the text is read. Libraries
are only looked up if already imported: an exception cannot come from a module that was
never loaded.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

__all__ = ["causes", "is_transient", "root_reason"]

# MLflow's error codes for a busy or unavailable backend (a locked or overloaded database).
_BUSY_CODES = frozenset({"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"})
# S3-compatible stores' codes for "try again".
_RETRY_CODES = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling"}
)
_BUSY_TEXT = ("database is locked", "database table is locked")
# What connection failures say once a library has turned them into text.
_FAILED_CONNECTION_TEXT = (
    "Connection refused",
    "Connection aborted",
    "Connection reset",
    "Max retries exceeded",
    "Read timed out",
    "Temporary failure in name resolution",
)


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
    return any(isinstance(e, kinds) or _busy(e) or _says_so(e) for e in causes(exc))


def root_reason(exc: BaseException) -> str:
    """The innermost cause in a few words ("Connection refused", "database is locked").

    Example:
        >>> try:
        ...     raise RuntimeError("API request failed") from ConnectionRefusedError(
        ...         111, "Connection refused")
        ... except RuntimeError as exc:
        ...     root_reason(exc)
        'Connection refused'
    """
    innermost = list(causes(exc))[-1]
    strerror = getattr(innermost, "strerror", None)
    if isinstance(strerror, str) and strerror:
        return strerror
    return (str(innermost).strip().splitlines() or [type(innermost).__name__])[0][:200]


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


def _says_so(exc: BaseException) -> bool:
    text = str(exc)
    return any(marker in text for marker in (*_FAILED_CONNECTION_TEXT, *_BUSY_TEXT))


def _busy(exc: BaseException) -> bool:
    """A busy backend: MLflow's error code, an S3 error code or HTTP status."""
    if str(getattr(exc, "error_code", "")) in _BUSY_CODES:
        return True
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore's ClientError
        error = response.get("Error", {})
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if error.get("Code") in _RETRY_CODES or int(status or 0) >= 500:
            return True
    return False
