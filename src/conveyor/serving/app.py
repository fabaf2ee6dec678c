"""The serving app's composition root: ``create_app(settings)`` wires state, routes and errors.

Nothing happens at import time. The model is loaded and warmed in the app's lifespan
(before the server accepts requests) unless a caller hands in a slot it already loaded,
as ``conveyor serve`` does so that a startup failure is one clear line and exit code 1.
When the model URI names an alias and ``poll_interval`` > 0, the lifespan also runs the
:class:`~conveyor.serving.follow.AliasFollower` poll task, which hot-swaps the model when
the alias moves (``POST /admin/reload`` asks for a check at once).

Status codes: bad requests are 4xx with a message naming the field or column (400
malformed, 404 unknown model/version, 413 body too large, 415 content type, 422 values
the model cannot take); errors on ``/v2`` paths use the protocol's ``{"error": ...}``
body, every other path MLflow's ``{"error_code": ..., "message": ...}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from conveyor import __version__
from conveyor.serving.admin import admin_router
from conveyor.serving.error_responses import (
    client_gone,
    http_error,
    request_error,
    unexpected_error,
    validation_error,
)
from conveyor.serving.fastpath import PredictionPath, ServingApp
from conveyor.serving.follow import AliasFollower
from conveyor.serving.inputs import RequestError
from conveyor.serving.metrics import RequestTelemetry
from conveyor.serving.monitoring_routes import monitoring_router
from conveyor.serving.routes import mlflow_router, v2_router
from conveyor.serving.settings import ServingSettings, load_serving
from conveyor.serving.slot import ModelSlot, load_slot
from conveyor.serving.state import ServingState, StateDep

__all__ = ["app_from_env", "create_app"]

logger = logging.getLogger(__name__)


def _lifespan(state: ServingState, follower: AliasFollower) -> Any:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if state.slot is None:
            state.slot = await run_in_threadpool(load_slot, state.settings)
        state.publish_models()
        settings = state.settings
        state.routing = settings.routing
        result = await follower.check_challenger()  # the shared routing, else the config's
        if result is not None and result.error:
            logger.warning(
                "routing %s: the second model is not loaded (%s); the served model "
                "answers everything until it is",
                state.routing.mode,
                result.error,
            )
        freeze_heap()
        state.ready = True
        logger.info("serving %s version %s", state.slot.name, state.slot.version)
        drift = None
        if settings.monitoring:
            drift = asyncio.create_task(_evaluate_drift(state), name="conveyor-drift")
        polling = None
        if settings.poll_interval > 0:  # the alias, the shared routing and its second model
            polling = asyncio.create_task(follower.poll(), name="conveyor-alias-poll")
        try:
            yield
        finally:
            state.ready = False
            for task in (polling, drift):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    return lifespan


def freeze_heap() -> None:
    """Move everything allocated so far (the libraries, the loaded models) out of the
    garbage collector's reach: a full collection over the ~1M objects that MLflow,
    scikit-learn and friends allocate stalls every request for hundreds of milliseconds,
    and none of them is garbage."""
    gc.collect()
    gc.freeze()


async def _evaluate_drift(state: ServingState) -> None:
    """Every ``drift_interval`` seconds, compare each version's window with its profile."""
    while True:
        await asyncio.sleep(state.settings.drift_interval)
        await run_in_threadpool(state.evaluate_drift)


async def healthz() -> dict[str, str]:
    """The process is alive and answering."""
    return {"status": "alive"}


async def readyz(state: StateDep) -> JSONResponse:
    """200 once the model is loaded and warmed; 503 before that and from SIGTERM on."""
    if not state.is_ready() or state.slot is None:
        status = "draining" if state.draining else "not ready"
        return JSONResponse({"status": status}, status_code=503)
    slot = state.slot
    return JSONResponse({"status": "ready", "model": slot.name, "version": slot.version})


async def metrics(state: StateDep) -> Response:
    """Prometheus metrics in the text exposition format."""
    body, content_type = state.metrics.render()
    return Response(body, media_type=content_type)


def create_app(settings: ServingSettings, *, slot: ModelSlot | None = None) -> ServingApp:
    """Build the serving app.

    Args:
        settings: model URI, registry, request limits, polling, drain and admin token.
        slot: a model already loaded and warmed (``conveyor serve`` loads it first);
            None: the app loads ``settings.model_uri`` at startup.

    Returns:
        The FastAPI app (prediction requests take its fast path); OpenAPI docs at ``/docs``.

    Example:
        >>> app = create_app(ServingSettings(model_uri="models:/m@champion",
        ...                                  tracking_uri="sqlite:///mlflow.db"))
        >>> app.title
        'Conveyor model server'
    """
    state = ServingState(settings=settings, slot=slot)
    follower = AliasFollower(state)
    app = ServingApp(
        title="Conveyor model server",
        version=__version__,
        description="MLflow scoring protocol and Open Inference Protocol v2 for one model.",
        lifespan=_lifespan(state, follower),
    )
    app.state.serving = state
    app.state.follower = follower
    app.add_middleware(RequestTelemetry, metrics=state.metrics, model=state.model_labels)
    app.prediction_path = RequestTelemetry(
        PredictionPath(state), metrics=state.metrics, model=state.model_labels
    )
    app.add_exception_handler(ClientDisconnect, client_gone)
    app.add_exception_handler(RequestError, request_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["health"])
    app.add_api_route("/readyz", readyz, methods=["GET"], tags=["health"])
    app.add_api_route("/metrics", metrics, methods=["GET"], tags=["metrics"])
    app.include_router(mlflow_router)
    app.include_router(v2_router)
    app.include_router(monitoring_router)
    app.include_router(admin_router)
    return app


def app_from_env() -> FastAPI:
    """``uvicorn --factory conveyor.serving.app:app_from_env``: settings from ``CONVEYOR_SERVE_*``.

    Raises:
        ConfigError: the serving settings are missing or invalid.
    """
    from conveyor.redaction import redact_logs

    redact_logs()  # a worker process: no secret in any log line
    return create_app(load_serving())
