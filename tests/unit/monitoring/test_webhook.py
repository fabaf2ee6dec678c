"""The webhook receiver's HTTP contract: answers, bad bodies, auth, counters."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conveyor.errors import ServiceUnavailableError
from conveyor.monitoring.trigger import RetrainTrigger, TriggerStateFile
from conveyor.monitoring.webhook import create_webhook_app

TOKEN = "webhook-token-0123456789"


class Launcher:
    name = "fake"

    def __init__(self) -> None:
        self.error: Exception | None = None
        self.count = 0

    def launch(self, *, reason: str, incidents: Sequence[str]) -> dict[str, Any]:
        if self.error:
            raise self.error
        self.count += 1
        return {
            "launcher": "fake",
            "id": f"run-{self.count}",
            "state": "running",
            "pid": 4242,
            "command": ["conveyor", "run", "-c", "/srv/project/conveyor.yaml"],
            "log": "/srv/project/.conveyor/trigger/logs/run.log",
            "url": "http://airflow.internal:8080/dags/conveyor_training/runs/x",
        }

    def status(self, run: dict[str, Any]) -> dict[str, Any]:
        return run


def payload(starts_at: str = "2026-11-26T08:00:00Z", retrain: str = "true") -> dict[str, Any]:
    return {
        "version": "4",
        "status": "firing",
        "receiver": "conveyor",
        "groupKey": "{}",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "FeatureDrift", "retrain": retrain},
                "annotations": {},
                "startsAt": starts_at,
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "abc",
            }
        ],
    }


@pytest.fixture
def launcher() -> Launcher:
    return Launcher()


def client_for(
    tmp_path: Path, launcher: Launcher, token: str | None = None, **limits: Any
) -> TestClient:
    trigger = RetrainTrigger(launcher, TriggerStateFile(tmp_path / "state.json"), cooldown=3600)
    return TestClient(create_webhook_app(trigger, token=token, **limits))


def test_one_run_per_incident_then_cooldown(tmp_path: Path, launcher: Launcher) -> None:
    client = client_for(tmp_path, launcher)
    first = client.post("/alerts", json=payload())
    assert first.status_code == 200
    assert first.json()["triggered"] is True and first.json()["run"]["id"] == "run-1"
    again = client.post("/alerts", json=payload())
    assert again.json() | {"incidents": None} == {
        "triggered": False,
        "result": "deduplicated",
        "reason": "incident already triggered a run: FeatureDrift",
        "incidents": None,
        "run": None,
    }
    assert client.post("/alerts", json=payload("later")).json()["result"] == "cooldown"
    assert client.post("/alerts", json=payload(retrain="no")).json()["result"] == "ignored"
    assert launcher.count == 1
    metrics = client.get("/metrics").text
    assert 'conveyor_retrain_triggers_total{result="started"} 1.0' in metrics
    assert 'conveyor_retrain_triggers_total{result="deduplicated"} 1.0' in metrics
    assert 'conveyor_retrain_triggers_total{result="failed"} 0.0' in metrics
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["in_flight"] is True
    assert health["last_run"]["id"] == "run-1"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "JSON"),
        (b"[]", "body"),
        (b'{"version": "4", "status": "firing"}', "body.alerts: Field required"),
        (b'{"version": "3", "status": "firing", "alerts": []}', "body.version"),
    ],
    ids=["not-json", "not-an-object", "no-alerts", "wrong-version"],
)
def test_bad_bodies_get_422_with_a_readable_line(
    tmp_path: Path, launcher: Launcher, body: bytes, needle: str
) -> None:
    answer = client_for(tmp_path, launcher).post(
        "/alerts", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and detail.startswith("not an Alertmanager webhook")
    assert needle in detail
    assert launcher.count == 0


def test_launch_failure_answers_503_so_alertmanager_retries(
    tmp_path: Path, launcher: Launcher
) -> None:
    client = client_for(tmp_path, launcher)
    launcher.error = ServiceUnavailableError("Airflow at http://af did not answer")
    failed = client.post("/alerts", json=payload())
    assert failed.status_code == 503
    assert failed.json()["result"] == "failed" and "did not answer" in failed.json()["reason"]
    launcher.error = None
    assert client.post("/alerts", json=payload()).json()["result"] == "started"


def test_token_guards_the_alert_route(tmp_path: Path, launcher: Launcher) -> None:
    client = client_for(tmp_path, launcher, token=TOKEN)
    assert client.post("/alerts", json=payload()).status_code == 401
    wrong = client.post("/alerts", json=payload(), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and launcher.count == 0
    right = client.post("/alerts", json=payload(), headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200 and launcher.count == 1
    assert client.get("/healthz").status_code == 200  # probes need no token


def test_healthz_tells_the_runs_state_but_no_path_command_pid_or_url(
    tmp_path: Path, launcher: Launcher
) -> None:
    client = client_for(tmp_path, launcher)
    assert client.post("/alerts", json=payload()).status_code == 200
    health = client.get("/healthz").json()
    assert health == {
        "status": "ok",
        "launcher": "fake",
        "cooldown_seconds": 3600,
        "in_flight": True,
        "last_triggered_at": health["last_triggered_at"],
        "incidents_remembered": 1,
        "last_run": {
            "launcher": "fake",
            "id": "run-1",
            "state": "running",
            "triggered_at": health["last_triggered_at"],
        },
    }


def test_a_body_over_the_limit_is_413(tmp_path: Path, launcher: Launcher) -> None:
    client = client_for(tmp_path, launcher, max_body_bytes=100)
    answer = client.post("/alerts", json=payload())
    assert answer.status_code == 413
    assert "exceeds the limit of 100 bytes" in answer.json()["detail"]
    assert launcher.count == 0


def test_json_nested_too_deep_is_400_naming_the_limit(tmp_path: Path, launcher: Launcher) -> None:
    body = b'{"alerts": ' + b"[" * 40 + b"]" * 40 + b"}"
    answer = client_for(tmp_path, launcher).post("/alerts", content=body)
    assert answer.status_code == 400
    assert "deeper than the limit of 32 levels" in answer.json()["detail"]
