"""The retraining trigger's HTTP receiver: Alertmanager's webhook in, a decision out.

Routes:
    ``POST /alerts``: an Alertmanager webhook notification (version 4). Answers 200 with
    ``{"triggered", "result", "reason", "incidents", "run"}``; 503 with the same body
    when the launcher could not start the run (Alertmanager retries 5xx answers); 422
    with one readable line for a body that is not such a notification (JSON or not); 401 without the
    bearer token when one is configured (checked before any byte of the body is read);
    413 for a body over ``max_body_bytes``, 408 for one slower than ``body_timeout``, 400
    for JSON nested too deep.
    ``GET /healthz``: liveness and the trigger's state (in flight, cooldown, the last
    run's state and result), without paths, commands, process ids or URLs.
    ``GET /metrics``: ``conveyor_retrain_triggers_total{result}`` for Prometheus.

FastAPI is imported at module level (its route signatures are resolved from this
module's names); only ``conveyor monitor serve-webhook`` imports this module.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
import orjson
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from conveyor.http_guard import (
    BodyRefusedError,
    check_json_depth,
    read_bounded_body,
    token_matches,
)
from conveyor.monitoring.trigger import RESULTS, AlertNotification, RetrainTrigger

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_BODY_BYTES",
    "HEALTH_RUN_FIELDS",
    "create_webhook_app",
    "public_health",
]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_BODY_TIMEOUT = 10.0
HEALTH_RUN_FIELDS = (
    "launcher",
    "id",
    "state",
    "run_id",
    "exit_code",
    "triggered_at",
    "started_at",
    "finished_at",
)
"""What ``/healthz`` tells of the last run; its log path, command, process id, Airflow
URL and DAG configuration stay in the state file."""
_HEALTH_FIELDS = (
    "launcher",
    "cooldown_seconds",
    "in_flight",
    "last_triggered_at",
    "incidents_remembered",
)
_NOT_A_NOTIFICATION = "not an Alertmanager webhook notification (version 4)"


def _one_line(errors: Any) -> str:
    """Pydantic errors as ``body.alerts.0.status: Input should be ...; ...``."""
    parts = []
    for error in list(errors)[:5]:
        where = ".".join(str(p) for p in ("body", *error.get("loc", ())))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid body"


def public_health(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The trigger's snapshot reduced to what an unauthenticated probe may read.

    Example:
        >>> public_health({"launcher": "local", "last_run": {"state": "running", "pid": 7}})
        {'status': 'ok', 'launcher': 'local', 'last_run': {'state': 'running'}}
    """
    answer: dict[str, Any] = {"status": "ok"}
    answer.update({k: snapshot[k] for k in _HEALTH_FIELDS if k in snapshot})
    if "last_run" in snapshot:
        last = snapshot["last_run"]
        shown = {k: last[k] for k in HEALTH_RUN_FIELDS if k in last} if last else None
        answer["last_run"] = shown
    return answer


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The sender went away mid-body: nothing to answer, and no server error."""
    return Response(status_code=499)


def _refused(exc: BodyRefusedError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=exc.headers)


async def _notification(
    request: Request, *, max_body_bytes: int, body_timeout: float
) -> AlertNotification | JSONResponse:
    """The request's notification, or the error answer for a body that is not one."""
    try:
        body = await read_bounded_body(request, limit=max_body_bytes, timeout=body_timeout)
        check_json_depth(body)
    except BodyRefusedError as exc:
        return _refused(exc)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return JSONResponse({"detail": f"{_NOT_A_NOTIFICATION}: malformed JSON: {exc}"}, 422)
    try:
        return AlertNotification.model_validate(data)
    except ValidationError as exc:
        return JSONResponse({"detail": f"{_NOT_A_NOTIFICATION}: {_one_line(exc.errors())}"}, 422)


def create_webhook_app(
    trigger: RetrainTrigger,
    *,
    token: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
) -> FastAPI:
    """Build the receiver app around a trigger.

    Args:
        trigger: decides and launches.
        token: bearer token required on ``POST /alerts`` (``None``: no auth).
        max_body_bytes: larger notification bodies are refused with 413.
        body_timeout: seconds a notification body may take to arrive (then 408).

    Returns:
        The FastAPI app (serve it with uvicorn).
    """
    registry = CollectorRegistry(auto_describe=True)
    triggers = Counter(
        "conveyor_retrain_triggers_total",
        "Alert notifications by what the retraining trigger decided.",
        ("result",),
        registry=registry,
    )
    for result in RESULTS:
        triggers.labels(result)  # every series exists from the start, at 0

    app = FastAPI(title="Conveyor retraining trigger", docs_url=None, redoc_url=None)
    app.add_exception_handler(ClientDisconnect, _client_gone)

    @app.post("/alerts")
    async def alerts(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        if token is not None and not token_matches(authorization, token):
            return JSONResponse(
                {"detail": "missing or wrong bearer token"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        notification = await _notification(
            request, max_body_bytes=max_body_bytes, body_timeout=body_timeout
        )
        if isinstance(notification, JSONResponse):
            return notification
        outcome = await anyio.to_thread.run_sync(trigger.handle, notification.to_alerts())
        triggers.labels(outcome.decision.result).inc()
        status = 503 if outcome.decision.result == "failed" else 200
        return JSONResponse(outcome.to_dict(), status_code=status)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return public_health(trigger.snapshot())

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
