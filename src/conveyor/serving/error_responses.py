"""Error answers in each protocol's own body: ``{"error": ...}`` on ``/v2`` paths, MLflow's
``{"error_code": ..., "message": ...}`` everywhere else.

The same functions answer for FastAPI's exception handlers and for the prediction fast
path (:mod:`conveyor.serving.fastpath`), so a bad request gets the same status and message
whichever way it came in.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from conveyor.serving.inputs import RequestError
from conveyor.serving.metrics import CLIENT_CLOSED_REQUEST, CLIENT_GONE
from conveyor.serving.protocols import mlflow as mlflow_protocol

__all__ = [
    "ErrorBody",
    "client_gone",
    "error_response",
    "http_error",
    "request_error",
    "unexpected_error",
    "validation_error",
]

logger = logging.getLogger(__name__)


class ErrorBody(JSONResponse):
    """A JSON error body written in ASCII (other characters as ``\\u`` escapes), so a
    message quoting a client's text can always be encoded."""

    def render(self, content: Any) -> bytes:
        """The content as compact ASCII JSON."""
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def error_response(path: str, status: int, message: str) -> JSONResponse:
    """The error body of the protocol that ``path`` belongs to."""
    if path.startswith("/v2"):
        return ErrorBody({"error": message}, status_code=status)
    return ErrorBody(mlflow_protocol.error_body(status, message), status_code=status)


async def request_error(request: Request, exc: Exception) -> JSONResponse:
    """A :class:`RequestError`: its status, message and headers (anything else: 400)."""
    if not isinstance(exc, RequestError):
        return error_response(request.url.path, 400, str(exc))
    response = error_response(request.url.path, exc.status, str(exc))
    response.headers.update(exc.headers)
    return response


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's parameter validation failed: 422 naming the first bad parameter."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path"))
    message = f"{where or 'request'}: {first.get('msg', 'invalid value')}"
    return error_response(request.url.path, 422, message)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own HTTP errors (404 no such path, 405 method): the protocol's body."""
    path = request.url.path
    if not isinstance(exc, StarletteHTTPException):
        return error_response(path, 500, "internal error")
    response = error_response(path, exc.status_code, f"{exc.detail}: {request.method} {path}")
    response.headers.update(exc.headers or {})
    return response


async def client_gone(request: Request, exc: Exception) -> Response:
    """The client went away before its answer: not a server error. The request is counted
    with status 499, and the empty answer goes nowhere."""
    request.scope.setdefault("state", {})[CLIENT_GONE] = True
    return Response(status_code=CLIENT_CLOSED_REQUEST)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug: 500, and the traceback in the server log (never in the answer)."""
    logger.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(
        request.url.path, 500, f"internal error ({type(exc).__name__}); see the server log"
    )
