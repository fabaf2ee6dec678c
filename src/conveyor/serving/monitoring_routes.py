"""Monitoring endpoints: ``POST /feedback`` (ground truth for earlier predictions) and
``GET /monitoring`` (drift and online metrics per loaded version, and the A/B comparison).

Feedback names the request id the server answered with (``X-Request-Id``) and gives one
label per predicted row. A body is checked whole before anything is applied: one bad item
is a 422 naming it, and nothing is recorded. Unknown ids (never seen, already labelled, or
older than the ``feedback_rows`` the server keeps) are reported, not errors.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from conveyor.serving.inputs import RequestError
from conveyor.serving.routing import CHALLENGER, PRIMARY
from conveyor.serving.state import StateDep

__all__ = ["FeedbackBody", "FeedbackItem", "monitoring_router"]

monitoring_router = APIRouter(tags=["monitoring"])


class FeedbackItem(BaseModel):
    """Ground truth for one earlier prediction request."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=128, description="X-Request-Id answered.")
    labels: list[Any] = Field(min_length=1, description="One true label or value per row.")


class FeedbackBody(BaseModel):
    """A batch of ground truth."""

    model_config = ConfigDict(extra="forbid")

    feedback: list[FeedbackItem] = Field(min_length=1, max_length=10_000)


@monitoring_router.post("/feedback")
async def feedback(body: FeedbackBody, state: StateDep) -> dict[str, Any]:
    """Join true labels to earlier predictions; answers the ids ``matched`` and ``unknown``."""
    if not state.settings.monitoring:
        raise RequestError("monitoring is off on this server (--no-monitoring)", status=404)
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
