"""Guards of the HTTP servers: loopback, token strength, bounded bodies, JSON depth."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.requests import Request

from conveyor.errors import ConfigError
from conveyor.http_guard import (
    MAX_JSON_DEPTH,
    BodyRefusedError,
    check_json_depth,
    check_token,
    is_loopback,
    read_bounded_body,
    require_token_beyond_loopback,
)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LocalHost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.0.0.5", False),
        ("server.example.com", False),
    ],
)
def test_only_loopback_addresses_count_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_short_token_is_a_config_error_naming_its_variable() -> None:
    with pytest.raises(ConfigError, match=r"CONVEYOR_X_TOKEN: .*at least 16 characters"):
        check_token("short", variable="CONVEYOR_X_TOKEN")
    check_token("sixteen-chars-ok", variable="CONVEYOR_X_TOKEN")


def test_a_write_endpoint_beyond_loopback_needs_a_token() -> None:
    with pytest.raises(ConfigError, match=r"--host 0\.0\.0\.0 .*POST /x needs .*CONVEYOR_X_TOKEN"):
        require_token_beyond_loopback(
            "0.0.0.0", None, variable="CONVEYOR_X_TOKEN", endpoint="POST /x"
        )


@pytest.mark.parametrize(("host", "token"), [("127.0.0.1", None), ("0.0.0.0", "t" * 16)])
def test_loopback_or_a_token_is_enough(host: str, token: str | None) -> None:
    require_token_beyond_loopback(host, token, variable="CONVEYOR_X_TOKEN", endpoint="POST /x")


def nested(depth: int, inner: str = "1") -> bytes:
    return ("[" * depth + inner + "]" * depth).encode()


def test_json_as_deep_as_the_limit_passes() -> None:
    check_json_depth(nested(MAX_JSON_DEPTH))
    check_json_depth(json.dumps({"a": [{"b": [[1]] * 500}]}).encode())  # many, not deep


@pytest.mark.parametrize(
    "body",
    [
        nested(MAX_JSON_DEPTH + 1),
        b'{"a": ' * 40 + b"1" + b"}" * 40,
        b"[" * 1_000_000,
        b'["]]]]]]]]", ' + nested(MAX_JSON_DEPTH + 1)[1:],  # closing brackets in a string
        b'["\\"]]]]]", ' + nested(MAX_JSON_DEPTH + 1)[1:],  # ... after an escaped quote
    ],
    ids=["arrays", "objects", "a-million", "hidden-by-a-string", "hidden-by-an-escape"],
)
def test_json_deeper_than_the_limit_is_400_naming_it(body: bytes) -> None:
    with pytest.raises(BodyRefusedError, match=f"deeper than the limit of {MAX_JSON_DEPTH}") as err:
        check_json_depth(body)
    assert err.value.status == 400


@pytest.mark.parametrize(
    "body",
    [
        b'["' + b"[" * 100 + b'"]',
        b'["\\\\", "' + b"{" * 100 + b'"]',  # an escaped backslash does not escape the quote
    ],
)
def test_brackets_inside_strings_do_not_count(body: bytes) -> None:
    check_json_depth(body)


def request_with(chunks: list[bytes], headers: dict[str, str], *, stall: bool = False) -> Request:
    """A request whose body arrives in ``chunks`` (then never, when ``stall``)."""
    pending = list(chunks)

    async def receive() -> dict[str, Any]:
        if pending:
            return {"type": "http.request", "body": pending.pop(0), "more_body": True}
        if stall:
            await asyncio.Event().wait()
        return {"type": "http.request", "body": b"", "more_body": False}

    raw = [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "headers": raw}, receive)


def read(request: Request, *, limit: int = 100, timeout: float = 5.0) -> bytes:
    return asyncio.run(read_bounded_body(request, limit=limit, timeout=timeout))


def test_a_body_within_the_limit_is_read_whole() -> None:
    assert read(request_with([b"ab", b"cd"], {"content-length": "4"})) == b"abcd"


@pytest.mark.parametrize(
    ("chunks", "headers", "status", "message"),
    [
        ([b"x"], {"content-length": "101"}, 413, "101 bytes or more exceeds the limit of 100"),
        ([b"x" * 60, b"x" * 60], {}, 413, "120 bytes or more exceeds the limit of 100"),
        ([b"x"], {"content-length": "abc"}, 400, "invalid Content-Length 'abc'"),
        ([b"x"], {"content-length": "\u00b9\u00b2"}, 400, "invalid Content-Length"),
        ([b"x"], {"content-length": "-1"}, 400, "invalid Content-Length"),
        ([b"x"], {"content-length": "9" * 40}, 400, "invalid Content-Length"),
    ],
    ids=["declared", "streamed", "not-a-number", "superscript-digits", "negative", "absurd"],
)
def test_bad_or_oversized_bodies_are_refused(
    chunks: list[bytes], headers: dict[str, str], status: int, message: str
) -> None:
    with pytest.raises(BodyRefusedError, match=message) as err:
        read(request_with(chunks, headers))
    assert err.value.status == status


def test_a_body_slower_than_the_deadline_is_408_and_closes_the_connection() -> None:
    slow = request_with([b"x"], {"content-length": "10"}, stall=True)
    with pytest.raises(BodyRefusedError, match=r"did not arrive within 0\.2 s") as err:
        read(slow, timeout=0.2)
    assert err.value.status == 408
    assert err.value.headers == {"Connection": "close"}
