"""The retraining trigger's HTTP receiver: Alertmanager's webhook in, a decision out.

Routes:
    ``POST /alerts``: an Alertmanager webhook notification (version 4). Answers 200 with
    ``{"triggered", "result", "reason", "incidents", "run"}``; 503 with the same body
    when the launcher could not start the run (Alertmanager retries 5xx answers); 422
    with one readable line for a body that is not such a notification; 401 without the
    bearer token when ``CONVEYOR_ADMIN_TOKEN`` is set.
    ``GET /healthz``: liveness and the trigger's state (last run, in flight, cooldown).
    ``GET /metrics``: ``conveyor_retrain_triggers_total{result}`` for Prometheus.

FastAPI is imported at module level (its route signatures are resolved from this
module's names); only ``conveyor monitor serve-webhook`` imports this module.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Body, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from conveyor.monitoring.trigger import RESULTS, AlertNotification, RetrainTrigger

__all__ = ["create_webhook_app"]


def _one_line(errors: Any) -> str:
    """Pydantic errors as ``body.alerts.0.status: Input should be ...; ...``."""
    parts = []
    for error in list(errors)[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid body"


def create_webhook_app(trigger: RetrainTrigger, *, token: str | None = None) -> FastAPI:
    """Build the receiver app around a trigger.

    Args:
        trigger: decides and launches.
        token: bearer token required on ``POST /alerts`` (``None``: no auth).

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

    @app.exception_handler(RequestValidationError)
    async def bad_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = f"not an Alertmanager webhook notification (version 4): {_one_line(exc.errors())}"
        return JSONResponse({"detail": detail}, status_code=422)

    @app.post("/alerts")
    def alerts(
        notification: Annotated[AlertNotification, Body()],
        authorization: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        if token is not None and not hmac.compare_digest(
            (authorization or "").encode(), f"Bearer {token}".encode()
        ):
            return JSONResponse({"detail": "missing or wrong bearer token"}, status_code=401)
        outcome = trigger.handle(notification.to_alerts())
        triggers.labels(outcome.decision.result).inc()
        status = 503 if outcome.decision.result == "failed" else 200
        return JSONResponse(outcome.to_dict(), status_code=status)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", **trigger.snapshot()}

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
