"""Monitoring endpoints: ``POST /feedback`` (ground truth for earlier predictions) and
``GET /monitoring`` (drift and online metrics per loaded version, and the A/B comparison).

Feedback names the request id the server answered with (``X-Request-Id``) and gives one
label per predicted row. With ``CONVEYOR_FEEDBACK_TOKEN`` set, a request needs
``Authorization: Bearer <token>`` (401 otherwise), checked before any byte of the body is
read; the body is then read within ``feedback_max_body_bytes`` and ``body_timeout``. A
body is checked whole before anything is applied: one bad item is a 422 naming it, and
nothing is recorded. Unknown ids (never seen, already labelled, or older than the
``feedback_rows`` the server keeps) are reported, not errors.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, ConfigDict, Field

from conveyor.http_guard import token_matches
from conveyor.serving.body import body_schema, media_type, parse_model, read_body
from conveyor.serving.inputs import RequestError
from conveyor.serving.routing import CHALLENGER, PRIMARY
from conveyor.serving.state import StateDep

__all__ = ["FeedbackBody", "FeedbackItem", "monitoring_router", "require_feedback"]

monitoring_router = APIRouter(tags=["monitoring"])


class FeedbackItem(BaseModel):
    """Ground truth for one earlier prediction request."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(
        pattern=r"^[A-Za-z0-9._:\-]{1,128}$", description="X-Request-Id answered."
    )
    labels: list[Any] = Field(min_length=1, description="One true label or value per row.")


class FeedbackBody(BaseModel):
    """A batch of ground truth."""

    model_config = ConfigDict(extra="forbid")

    feedback: list[FeedbackItem] = Field(min_length=1, max_length=10_000)


async def require_feedback(
    state: StateDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    """FastAPI dependency: 404 when monitoring is off, 401 without the feedback token
    (when one is configured). It runs before the body is read.

    Raises:
        RequestError: 404 (monitoring off) or 401 (missing or wrong token).
    """
    settings = state.settings
    if not settings.monitoring:
        raise RequestError("monitoring is off on this server (--no-monitoring)", status=404)
    expected = settings.feedback_token
    if expected is not None and not token_matches(authorization, expected.get_secret_value()):
        raise RequestError(
            "a valid feedback bearer token is required (CONVEYOR_FEEDBACK_TOKEN)",
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )


@monitoring_router.post(
    "/feedback", dependencies=[Depends(require_feedback)], openapi_extra=body_schema(FeedbackBody)
)
async def feedback(request: Request, state: StateDep) -> dict[str, Any]:
    """Join true labels to earlier predictions; answers the ids ``matched`` and ``unknown``.
    The body is a :class:`FeedbackBody`."""
    settings = state.settings
    media_type(request.headers.get("content-type"), accepted=("application/json",), missing_ok=True)
    raw = await read_body(
        request, limit=settings.feedback_max_body_bytes, timeout=settings.body_timeout
    )
    body = parse_model(raw, FeedbackBody)
    for index, item in enumerate(body.feedback):
        problem = state.check_feedback(item.request_id, item.labels)
        if problem is not None:
            raise RequestError(f"feedback.{index}: request {item.request_id!r}: {problem}")
    items = [(item.request_id, item.labels) for item in body.feedback]
    return await anyio.to_thread.run_sync(state.learn, items)


def _version_summary(route: str, monitor: Any) -> dict[str, Any]:
    report = monitor.last_drift
    drift = None
    if report is not None:
        drift = {
            "drift_detected": report.drift_detected,
            "drift_share": report.drift_share,
            "drifted_features": report.drifted_features,
            "reason": report.reason,
            "rows": report.rows,
        }
    return {
        "route": route,
        "version": monitor.slot.version,
        "runtime": monitor.slot.runtime,
        "drift_watched": monitor.window is not None,
        "drift": drift,
        "online": {"rows": len(monitor.online), "metrics": monitor.online.metrics()},
    }


@monitoring_router.get("/monitoring")
async def monitoring(state: StateDep) -> dict[str, Any]:
    """Drift (last evaluation) and online metrics per loaded version; with two versions,
    whether their outcomes differ significantly."""
    from conveyor.monitoring.online import compare_windows

    found = dict(state.monitors())
    answer: dict[str, Any] = {
        "versions": [_version_summary(route, monitor) for route, monitor in found.items()],
        "comparison": None,
    }
    if PRIMARY in found and CHALLENGER in found:
        result = compare_windows(found[PRIMARY].online, found[CHALLENGER].online)
        answer["comparison"] = {
            "primary_version": found[PRIMARY].slot.version,
            "challenger_version": found[CHALLENGER].slot.version,
            **result.to_dict(),
        }
    return answer
