"""Reading request bodies safely (byte limit, content type, UTF-8 text and JSON), and
writing prediction answers fast (:class:`JsonAnswer`).

Every check fails with a :class:`RequestError` carrying the HTTP status to answer with:
413 for a body over the limit, 415 for a content type the route does not take, 400 for
bytes that are not UTF-8 or text that is not JSON.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import JSONResponse

from conveyor.serving.inputs import RequestError

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = ["JsonAnswer", "decode_text", "media_type", "parse_json", "read_body"]


class JsonAnswer(JSONResponse):
    """A JSON response rendered by orjson (several times faster than the standard
    encoder on prediction lists; a NaN is written as ``null``, as JSON has no NaN)."""

    def render(self, content: Any) -> bytes:
        """The content as compact JSON bytes."""
        return orjson.dumps(content)


def media_type(header: str | None, *, accepted: tuple[str, ...], missing_ok: bool = False) -> str:
    """The request's media type, if the route takes it.

    Args:
        header: the ``Content-Type`` header (``None`` when absent).
        accepted: media types the route takes, e.g. ``("application/json", "text/csv")``.
        missing_ok: an absent header means the first accepted type.

    Returns:
        The lower-case media type without parameters.

    Raises:
        RequestError: (415) a type not accepted, or a charset other than UTF-8.
    """
    if not header:
        if missing_ok:
            return accepted[0]
        raise RequestError(
            f"missing Content-Type header; send one of: {', '.join(accepted)}", status=415
        )
    kind, *params = (part.strip() for part in header.split(";"))
    kind = kind.lower()
    if kind not in accepted:
        raise RequestError(
            f"unsupported Content-Type {kind!r}; send one of: {', '.join(accepted)}", status=415
        )
    for param in params:
        key, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if key.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            raise RequestError(f"unsupported charset {charset!r}; send UTF-8", status=415)
    return kind


async def read_body(request: Request, *, limit: int) -> bytes:
    """The request body, refused as soon as it is known to exceed ``limit`` bytes.

    Raises:
        RequestError: (413) the declared or actual length is over the limit; (400) a
            non-numeric Content-Length.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise RequestError(f"invalid Content-Length {declared[:40]!r}", status=400)
        if int(declared) > limit:
            raise RequestError(_too_large(int(declared), limit), status=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(_too_large(size, limit), status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> str:
    return f"request body of {size} bytes or more exceeds the limit of {limit} bytes"


def decode_text(body: bytes) -> str:
    """The body as text.

    Raises:
        RequestError: (400) the bytes are not valid UTF-8 (the message gives the offset).
    """
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(
            f"the body is not valid UTF-8 (invalid byte at offset {exc.start})", status=400
        ) from exc


def _constant(name: str) -> float:
    # JSON has no NaN; MLflow clients send the literal NaN (Python's json does) for missing.
    if name == "NaN":
        return math.nan
    raise ValueError(f"{name} is not allowed")


def parse_json(body: bytes) -> Any:
    """Decode a UTF-8 JSON body (the literal ``NaN`` is read as a missing number).

    Raises:
        RequestError: (400) not UTF-8, empty, or malformed JSON (with line and column).
    """
    try:
        return orjson.loads(body)  # the fast parser takes valid JSON (and UTF-8) only...
    except orjson.JSONDecodeError:
        pass  # ...the standard one reads NaN and names where the rest went wrong
    text = decode_text(body)
    if not text.strip():
        raise RequestError("empty body; send a JSON object", status=400)
    try:
        return json.loads(text, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise RequestError(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", status=400
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise RequestError(f"malformed JSON: {exc}", status=400) from exc
