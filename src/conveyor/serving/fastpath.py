"""The prediction fast path: scoring requests skip FastAPI's routing, dependency injection
and middleware stack.

Measured on a single-row ONNX request (py-spy, 1 worker), FastAPI's layers took more than
half of the event loop: matching the path against every route in turn, solving the
dependencies (a synchronous dependency is even run in a worker thread), and six
middleware layers, each one more coroutine per request. That is several times what ONNX
Runtime takes to score the row.

:class:`ServingApp` is the FastAPI app with one change: ``POST /invocations``,
``POST /v2/models/{name}/infer`` and ``POST /v2/models/{name}/versions/{version}/infer``
are matched here, by splitting the path, and answered by the very handler functions that
FastAPI documents in ``/docs`` (``conveyor.serving.routes``), with the same request id,
metrics and error bodies (:mod:`conveyor.serving.error_responses`). Every other request,
and every other method on those paths, goes through FastAPI unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from conveyor.serving import routes
from conveyor.serving.error_responses import client_gone, request_error, unexpected_error
from conveyor.serving.inputs import RequestError

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from conveyor.serving.state import ServingState

__all__ = [
    "INVOCATIONS",
    "PARAMS",
    "V2_INFER",
    "V2_VERSION_INFER",
    "PredictionPath",
    "RouteTemplate",
    "ServingApp",
    "match_prediction",
    "query_flag",
]


@dataclass(frozen=True)
class RouteTemplate:
    """A matched prediction route; ``path`` is the template that metrics are labelled with
    (as Starlette's route objects, which ``scope["route"]`` otherwise holds)."""

    path: str


INVOCATIONS = RouteTemplate("/invocations")
V2_INFER = RouteTemplate("/v2/models/{name}/infer")
V2_VERSION_INFER = RouteTemplate("/v2/models/{name}/versions/{version}/infer")

PARAMS = "conveyor.path_params"
"""Key in the ASGI scope of a matched prediction route's path parameters (a tuple)."""
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


def match_prediction(path: str) -> tuple[RouteTemplate, tuple[str, ...]] | None:
    """The prediction route a (decoded) request path names, and its path parameters.

    Path parameters match as Starlette's ``{name}`` does: one non-empty segment.

    Example:
        >>> match_prediction("/v2/models/churn/versions/3/infer")
        (RouteTemplate(path='/v2/models/{name}/versions/{version}/infer'), ('churn', '3'))
        >>> match_prediction("/v2/models/churn/ready") is None
        True
    """
    if path == INVOCATIONS.path:
        return INVOCATIONS, ()
    if not (path.startswith("/v2/models/") and path.endswith("/infer")):
        return None
    parts = path.split("/")  # "", "v2", "models", name, ["versions", version,] "infer"
    if len(parts) == 5 and parts[3]:
        return V2_INFER, (parts[3],)
    if len(parts) == 7 and parts[3] and parts[4] == "versions" and parts[5]:
        return V2_VERSION_INFER, (parts[3], parts[5])
    return None


def query_flag(query_string: bytes, name: str) -> bool:
    """A boolean query parameter, read as FastAPI reads a ``bool`` one (absent: False;
    the last value wins).

    Raises:
        RequestError: (422) a value that is not a boolean, naming the parameter.

    Example:
        >>> query_flag(b"probabilities=true", "probabilities")
        True
    """
    if not query_string:
        return False
    values = [v for k, v in parse_qsl(query_string.decode("latin-1")) if k == name]
    if not values:
        return False
    value = values[-1].strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise RequestError(f"{name}: Input should be a valid boolean, unable to interpret input")


class PredictionPath:
    """ASGI app answering a matched prediction route with the handlers of
    :mod:`conveyor.serving.routes`; request errors get the protocol's error body, a bug a
    500 (logged), a client that went away a 499 in the metrics.

    Args:
        state: the app's run-time state (what FastAPI's ``StateDep`` would inject).
    """

    def __init__(self, state: ServingState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one prediction request (``scope["route"]`` and ``scope[PARAMS]`` set)."""
        request = Request(scope, receive)
        try:
            response = await self._answer(request, scope["route"], scope[PARAMS])
        except ClientDisconnect as exc:
            response = await client_gone(request, exc)
        except RequestError as exc:
            response = await request_error(request, exc)
        except Exception as exc:
            response = await unexpected_error(request, exc)
        await response(scope, receive, send)

    async def _answer(
        self, request: Request, route: RouteTemplate, params: tuple[str, ...]
    ) -> Response:
        state = self.state
        if route is INVOCATIONS:
            wanted = query_flag(request.scope["query_string"], "probabilities")
            return await routes.invocations(request, state, probabilities=wanted)
        if route is V2_INFER:
            return await routes.v2_infer(params[0], request, state)
        return await routes.v2_version_infer(params[0], params[1], request, state)


class ServingApp(FastAPI):
    """The serving app: FastAPI, with prediction requests taken by :attr:`prediction_path`
    (see the module docstring). Until it is set, every request goes through FastAPI.

    Attributes:
        prediction_path: the ASGI app that answers matched prediction requests (the
            :class:`PredictionPath` wrapped in the request telemetry middleware).
    """

    prediction_path: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one ASGI connection: the fast path for prediction requests, else FastAPI."""
        fast = self.prediction_path
        if fast is not None and scope["type"] == "http" and scope["method"] == "POST":
            found = match_prediction(scope["path"])
            if found is not None:
                scope["app"] = self
                scope["route"], scope[PARAMS] = found
                await fast(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
