"""One redactor for every text Conveyor writes where people or machines read it.

``redact`` hides, wherever they stand in a text:

- the password of a URL (``scheme://user:PASSWORD@host``), special characters included;
- secret query parameters (``?password=``, ``token=``, ``api_key=``, presigned-URL
  signatures and credentials such as ``X-Amz-Signature``);
- bearer tokens (``Authorization: Bearer ...``);
- secret environment assignments (``AWS_SECRET_ACCESS_KEY=...``, ``*_PASSWORD=...``,
  ``*_TOKEN=...``, ``*_SECRET=...``).

It prefers hiding too much to too little: text it cannot parse as a URL's user part is
masked whole. ``redact_tree`` applies it to every string of a JSON-like value;
``redact_logs`` to every log record this process makes, libraries' included.
"""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["MASK", "redact", "redact_logs", "redact_tree"]

MASK = "***"

_SECRET_PARAMS = (
    "password|passwd|pwd|pass|token|access_token|refresh_token|id_token|secret|"
    "client_secret|api_key|apikey|api-key|key|sig|signature|x-amz-signature|"
    "x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential|sas"
)
_QUERY = re.compile(rf"([?&;](?:{_SECRET_PARAMS})=)[^&;#\s\"'<>]*", re.IGNORECASE)
_BEARER = re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_ENV = re.compile(
    r"\b([A-Z][A-Z0-9_]*(?:PASSWORD|PASSWD|TOKEN|SECRET|SECRET_ACCESS_KEY|API_KEY)=)"
    r"(?:\"[^\"]*\"|'[^']*'|\S+)"
)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>]+")


def redact(text: str) -> str:
    """``text`` with every secret it holds replaced by ``***``.

    Args:
        text: any text: a URI, a command line, a log line, an error message, HTML.

    Returns:
        The same text, secrets masked.

    Example:
        >>> redact("postgresql://app:s3cr@t!@db:5432/crm?sslmode=require")
        'postgresql://app:***@db:5432/crm?sslmode=require'
    """
    if not text:
        return text
    text = _URL.sub(lambda m: _redact_url(m.group(0)), text)
    text = _QUERY.sub(rf"\1{MASK}", text)
    text = _BEARER.sub(rf"\1{MASK}", text)
    return _ENV.sub(rf"\1{MASK}", text)


def _redact_url(url: str) -> str:
    """The URL with the password of its user part masked.

    The user part ends at the last ``@`` before the path, so a password holding ``@``,
    ``:`` or ``/`` is masked whole.
    """
    scheme, _, rest = url.partition("://")
    at = rest.rfind("@")
    if at <= 0:
        return url
    userinfo = rest[:at]
    user, colon, _ = userinfo.partition(":")
    if not colon or "/" in user:
        return url
    return f"{scheme}://{user}:{MASK}@{rest[at + 1 :]}"


def redact_tree(value: Any) -> Any:
    """A JSON-like value (dicts, lists, strings, numbers) with every string redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_tree(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(item) for item in value]
    return value


_REDACTING = "conveyor_redacting"
_PLAIN = (str, int, float, bool, type(None))


def _plain_args(args: Any) -> bool:
    """Whether log arguments are all strings, numbers or None (nothing whose str() we
    cannot see in advance)."""
    if isinstance(args, tuple):
        return all(isinstance(a, _PLAIN) for a in args)
    if isinstance(args, dict):
        return all(isinstance(a, _PLAIN) for a in args.values())
    return args is None


def _redacted_args(args: Any) -> Any:
    if isinstance(args, tuple):
        return tuple(redact(a) if isinstance(a, str) else a for a in args)
    if isinstance(args, dict):
        return {k: redact(v) if isinstance(v, str) else v for k, v in args.items()}
    return args


def redact_logs() -> None:
    """Redact every log record this process makes from now on (idempotent).

    Installed through the record factory, so it holds for every logger and handler,
    libraries' and servers' included. A record is formatted once, when it is made (only
    records at an enabled level are made at all).
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, _REDACTING, False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _plain_args(record.args) and isinstance(record.msg, str):
            # Kept as template and arguments: formatters that read ``args`` (uvicorn's
            # access log) still work.
            record.msg = redact(record.msg)
            record.args = _redacted_args(record.args)
            return record
        try:
            message = record.getMessage()
        except Exception:  # a broken format: leave it to the handler to report
            return record
        record.msg, record.args = redact(message), None
        return record

    setattr(factory, _REDACTING, True)
    logging.setLogRecordFactory(factory)
