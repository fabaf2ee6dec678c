"""Reading request bodies safely (byte limit, deadline, content type, UTF-8 text, JSON
nesting depth), and writing prediction answers fast (:class:`JsonAnswer`).

Every check fails with a :class:`RequestError` carrying the HTTP status to answer with:
413 for a body over the limit, 408 for one that did not arrive within ``body_timeout``,
415 for a content type the route does not take, 400 for bytes that are not UTF-8, text
that is not JSON or JSON nested deeper than :data:`~conveyor.http_guard.MAX_JSON_DEPTH`,
422 for JSON that does not fit the route's schema (naming the field).
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.responses import JSONResponse

from conveyor.http_guard import BodyRefusedError, check_json_depth, read_bounded_body
from conveyor.serving.inputs import RequestError

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = [
    "JsonAnswer",
    "body_schema",
    "decode_text",
    "media_type",
    "parse_json",
    "parse_model",
    "read_body",
]

ModelT = TypeVar("ModelT", bound=BaseModel)


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


async def read_body(request: Request, *, limit: int, timeout: float) -> bytes:
    """The request body, refused as soon as it is known to be too large or too slow.

    Args:
        request: the request.
        limit: the most bytes accepted.
        timeout: seconds the whole body may take to arrive.

    Raises:
        RequestError: (413) the declared or actual length is over the limit; (400) a
            non-numeric Content-Length; (408, ``Connection: close``) the body did not
            arrive within ``timeout`` seconds.
    """
    try:
        return await read_bounded_body(request, limit=limit, timeout=timeout)
    except BodyRefusedError as exc:
        raise RequestError(str(exc), exc.status, headers=exc.headers) from exc


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
        RequestError: (400) not UTF-8, empty, nested too deep, or malformed JSON (with
            line and column).
    """
    try:
        check_json_depth(body)  # before either parser recurses into it
    except BodyRefusedError as exc:
        raise RequestError(str(exc), exc.status) from exc
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


def parse_model(body: bytes, model: type[ModelT]) -> ModelT:
    """A JSON body parsed (as :func:`parse_json`) and validated by a pydantic model.

    Raises:
        RequestError: (400) as :func:`parse_json`; (422) the JSON does not fit the model
            (the message names the first bad field, e.g. ``feedback.0.labels``).
    """
    data = parse_json(body)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise RequestError(f"{where}: {first['msg']}{more}", status=422) from exc


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI ``requestBody`` of a route that reads a JSON body of ``model`` itself
    (for ``openapi_extra``), with the model's nested definitions inlined."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(definitions[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    content = {"application/json": {"schema": inline(schema)}}
    return {"requestBody": {"required": True, "content": content}}
