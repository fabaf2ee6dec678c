"""Guards shared by Conveyor's HTTP servers (the model server and the retraining receiver):
bearer tokens, binding beyond loopback, and request bodies bounded in size, time and depth.

A request these guards refuse raises :class:`BodyRefusedError` carrying the HTTP status to
answer with; each server turns it into its own error body. Start-up checks raise
:class:`~conveyor.errors.ConfigError` (the CLI exits 2).
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import re
from typing import TYPE_CHECKING, Any

import anyio

from conveyor.errors import ConfigError, DataError

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = [
    "MAX_JSON_DEPTH",
    "MIN_TOKEN_CHARS",
    "BodyRefusedError",
    "bearer_token",
    "check_json_depth",
    "check_token",
    "is_loopback",
    "read_bounded_body",
    "require_token_beyond_loopback",
    "token_matches",
]

MIN_TOKEN_CHARS = 16
"""The shortest bearer token a server accepts in its settings."""
MAX_JSON_DEPTH = 32
"""JSON bodies nested deeper than this many arrays and objects are refused (400)."""
_DIGITS = re.compile(r"[0-9]{1,20}")
_QUOTE = ord('"')
_CHUNK = 1 << 20


class BodyRefusedError(DataError):
    """A request refused before it is parsed; ``status`` is the HTTP status to answer
    with, ``headers`` extra response headers."""

    def __init__(self, message: str, status: int, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None.

    Example:
        >>> bearer_token("Bearer s3cret")
        's3cret'
        >>> bearer_token("Basic dXNlcg==") is None
        True
    """
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def token_matches(authorization: str | None, expected: str) -> bool:
    """Whether the header carries ``expected``, compared in constant time."""
    token = bearer_token(authorization)
    if token is None:
        return False
    return hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8"))


def is_loopback(host: str) -> bool:
    """Whether a listening address reaches this machine only (``127.0.0.0/8``, ``::1``,
    ``localhost``); ``0.0.0.0``, ``::``, other names and addresses reach further.

    Example:
        >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0")
        (True, True, False)
    """
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_token(token: str | None, *, variable: str) -> None:
    """Refuse a configured bearer token shorter than :data:`MIN_TOKEN_CHARS`.

    Raises:
        ConfigError: the token is too short (the message names ``variable``).
    """
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(f"{variable}: the token must have at least {MIN_TOKEN_CHARS} characters")


def require_token_beyond_loopback(
    host: str, token: str | None, *, variable: str, endpoint: str, alternative: str = ""
) -> None:
    """Refuse to serve a write endpoint without a token on an address others can reach.

    Args:
        host: the address the server listens on.
        token: the endpoint's configured bearer token, if any.
        variable: the environment variable that sets it.
        endpoint: the endpoint, for the message (``POST /feedback``).
        alternative: another way out, appended to the message.

    Raises:
        ConfigError: ``host`` is beyond loopback and ``token`` is None.
    """
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"--host {host} listens beyond loopback, where {endpoint} needs authentication: "
            f"set {variable} (at least {MIN_TOKEN_CHARS} characters){alternative}"
        )


def _declared_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is None:
        return
    if not _DIGITS.fullmatch(declared.strip()):
        raise BodyRefusedError(f"invalid Content-Length {declared[:40]!r}", 400)
    if int(declared) > limit:
        raise BodyRefusedError(_too_large(int(declared), limit), 413)


def _too_large(size: int, limit: int) -> str:
    return f"request body of {size} bytes or more exceeds the limit of {limit} bytes"


async def read_bounded_body(request: Request, *, limit: int, timeout: float) -> bytes:
    """The request body, refused as soon as it is known to be too large or too slow.

    Args:
        request: the request whose body to read.
        limit: the most bytes accepted.
        timeout: seconds the whole body may take to arrive.

    Returns:
        The body.

    Raises:
        BodyRefusedError: (413) the declared or received length is over ``limit``; (400) a
            Content-Length that is not a number; (408, ``Connection: close``) the body
            did not arrive within ``timeout`` seconds.
    """
    _declared_length(request, limit)
    chunks: list[bytes] = []
    size = 0
    try:
        with anyio.fail_after(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyRefusedError(_too_large(size, limit), 413)
                chunks.append(chunk)
    except TimeoutError as exc:
        raise BodyRefusedError(
            f"the request body did not arrive within {timeout:g} s (body_timeout); send it at once",
            408,
            headers={"Connection": "close"},
        ) from exc
    return b"".join(chunks)


def check_json_depth(body: bytes, *, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse a JSON body nested more than ``limit`` arrays and objects deep, before any
    parser recurses into it. Brackets inside strings do not count.

    Linear in the body's size: a body with at most ``limit`` opening brackets passes at
    once (every single-row request); others are scanned with numpy.

    Raises:
        BodyRefusedError: (400) the body is nested too deep (the message names the limit).
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return
    if _deepest(body) > limit:
        raise BodyRefusedError(
            f"the JSON body nests arrays and objects deeper than the limit of {limit} levels",
            400,
        )


def _deepest(body: bytes) -> int:
    """The deepest nesting of ``[``/``{`` outside strings. Escaped backslashes and
    escaped quotes are dropped first (pairs from the left, as JSON reads them), so every
    remaining quote opens or closes a string; a few bytes of memory per body byte."""
    import numpy as np

    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    data = np.frombuffer(body, dtype=np.uint8)
    steps = _steps()[data]
    quotes = data == _QUOTE
    if quotes.any():
        steps[np.logical_xor.accumulate(quotes)] = 0  # inside a string (or on its quote)
    depth = deepest = 0
    for start in range(0, steps.size, _CHUNK):
        running = np.cumsum(steps[start : start + _CHUNK], dtype=np.int32) + depth
        deepest = max(deepest, int(running.max()))
        depth = int(running[-1])
    return deepest


@functools.cache
def _steps() -> Any:
    """Per byte value, its step in nesting depth: +1 for ``[ {``, -1 for ``] }``."""
    import numpy as np

    steps = np.zeros(256, dtype=np.int8)
    for char in b"[{":
        steps[char] = 1
    for char in b"]}":
        steps[char] = -1
    return steps
