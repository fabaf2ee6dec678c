"""The retraining trigger without Alertmanager: poll Prometheus' firing alerts in a loop.

Each tick reads ``GET <prometheus>/api/v1/alerts`` (the alerts of Prometheus' own rule
evaluation) and feeds the firing ones to the same decision core as the webhook. An
incident is the alert's label set and its ``activeAt``; pending alerts do not count.
A tick whose query fails is logged and skipped: the next one tries again.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from typing import Any

from conveyor.errors import ServiceUnavailableError
from conveyor.monitoring.trigger import Alert, RetrainTrigger, TriggerOutcome, label_fingerprint

__all__ = ["alerts_from_prometheus", "fetch_prometheus_alerts", "watch"]

log = logging.getLogger(__name__)


def alerts_from_prometheus(answer: dict[str, Any]) -> list[Alert]:
    """Prometheus' ``/api/v1/alerts`` answer as decision-core alerts (firing ones only).

    Args:
        answer: the decoded JSON answer.

    Returns:
        One alert per firing Prometheus alert.

    Raises:
        ServiceUnavailableError: the answer is not a successful alerts answer.
    """
    if answer.get("status") != "success":
        raise ServiceUnavailableError(f"Prometheus answered {answer.get('error', answer)!r}")
    alerts = []
    for item in (answer.get("data") or {}).get("alerts") or []:
        labels = {str(k): str(v) for k, v in (item.get("labels") or {}).items()}
        if item.get("state") != "firing":
            continue
        alerts.append(
            Alert(
                name=labels.get("alertname", "unnamed"),
                status="firing",
                labels=labels,
                starts_at=str(item.get("activeAt", "")),
                fingerprint=label_fingerprint(labels),
            )
        )
    return alerts


def fetch_prometheus_alerts(url: str, *, timeout: float = 10.0) -> list[Alert]:
    """Ask Prometheus for its alerts.

    Args:
        url: Prometheus' base URL (``http://localhost:9090``).
        timeout: seconds to wait for the answer.

    Returns:
        The firing alerts.

    Raises:
        ServiceUnavailableError: Prometheus did not answer, or not with alerts.
    """
    endpoint = url.rstrip("/") + "/api/v1/alerts"
    try:
        with urllib.request.urlopen(endpoint, timeout=timeout) as response:
            answer = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ServiceUnavailableError(f"Prometheus at {endpoint} did not answer: {exc}") from exc
    if not isinstance(answer, dict):
        raise ServiceUnavailableError(f"Prometheus at {endpoint} answered {answer!r}")
    return alerts_from_prometheus(answer)


def watch(
    trigger: RetrainTrigger,
    prometheus_url: str,
    *,
    interval: float = 60.0,
    ticks: int | None = None,
    stop: threading.Event | None = None,
) -> list[TriggerOutcome]:
    """Poll Prometheus every ``interval`` seconds and feed the trigger.

    Args:
        trigger: decides and launches.
        prometheus_url: Prometheus' base URL.
        interval: seconds between polls.
        ticks: stop after this many polls (``None``: until ``stop`` is set).
        stop: set it to end the loop.

    Returns:
        The outcome of each successful poll when ``ticks`` is given (else empty: an
        endless loop keeps no history, it logs).
    """
    stop = stop or threading.Event()
    outcomes: list[TriggerOutcome] = []
    done = 0
    while not stop.is_set() and (ticks is None or done < ticks):
        try:
            outcome = trigger.handle(fetch_prometheus_alerts(prometheus_url))
        except ServiceUnavailableError as exc:
            log.warning("watch: %s", exc)
        else:
            log.info("watch: %s: %s", outcome.decision.result, outcome.decision.reason)
            if ticks is not None:  # a bounded run reports its outcomes; an endless one logs
                outcomes.append(outcome)
        done += 1
        if ticks is None or done < ticks:
            stop.wait(interval)
    return outcomes
