"""The retraining trigger's decisions: retrain label, dedup, cooldown, in flight, persistence."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from conveyor.errors import ConfigError, ServiceUnavailableError
from conveyor.monitoring.trigger import (
    Alert,
    AlertNotification,
    RetrainTrigger,
    TriggerState,
    TriggerStateFile,
    decide,
    label_fingerprint,
    record_launch,
)

T0 = 1_800_000_000.0


def alert(
    *,
    status: str = "firing",
    retrain: str | None = "true",
    starts_at: str = "2026-11-26T08:00:00Z",
    name: str = "FeatureDrift",
    fingerprint: str = "f00d",
) -> Alert:
    labels = {"alertname": name, "feature": "age"}
    if retrain is not None:
        labels["retrain"] = retrain
    return Alert(name, status, labels, starts_at, fingerprint)


def test_firing_retrain_alert_starts_a_run() -> None:
    decision = decide([alert()], TriggerState(), now=T0, cooldown=3600, in_flight=False)
    assert decision.triggered and decision.result == "started"
    assert [a.incident for a in decision.incidents] == ["f00d@2026-11-26T08:00:00Z"]
    assert "FeatureDrift" in decision.reason


@pytest.mark.parametrize(
    "alerts",
    [
        [alert(status="resolved")],
        [alert(retrain=None)],
        [alert(retrain="false")],
        [],
    ],
    ids=["resolved", "no-retrain-label", "retrain-false", "empty"],
)
def test_alerts_that_never_trigger(alerts: list[Alert]) -> None:
    decision = decide(alerts, TriggerState(), now=T0, cooldown=0, in_flight=False)
    assert decision.result == "ignored" and not decision.triggered


def test_same_incident_never_triggers_twice() -> None:
    first = decide([alert()], TriggerState(), now=T0, cooldown=0, in_flight=False)
    state = record_launch(TriggerState(), first, now=T0, run={"id": "r1", "state": "succeeded"})
    again = decide([alert()], state, now=T0 + 10 * 86400, cooldown=0, in_flight=False)
    assert again.result == "deduplicated"


def test_new_incident_within_cooldown_is_held_back_not_consumed() -> None:
    first = decide([alert()], TriggerState(), now=T0, cooldown=3600, in_flight=False)
    state = record_launch(TriggerState(), first, now=T0, run={"id": "r1", "state": "running"})
    refire = alert(starts_at="2026-11-26T08:30:00Z")
    held = decide([refire], state, now=T0 + 1800, cooldown=3600, in_flight=True)
    assert held.result == "cooldown"
    assert "next run allowed in 1800s" in held.reason and "in flight" in held.reason
    later = decide([refire], state, now=T0 + 3601, cooldown=3600, in_flight=False)
    assert later.result == "started"  # still firing after the cooldown: it gets its run


def test_at_most_one_run_in_flight() -> None:
    state = TriggerState(last_triggered_at=T0, last_run={"id": "r1", "state": "running"})
    decision = decide([alert(fingerprint="beef")], state, now=T0 + 5, cooldown=0, in_flight=True)
    assert decision.result == "in_flight"


def test_only_new_incidents_of_a_group_are_consumed() -> None:
    old, new = alert(fingerprint="aaaa"), alert(fingerprint="bbbb", name="AccuracyDrop")
    first = decide([old], TriggerState(), now=T0, cooldown=0, in_flight=False)
    state = record_launch(TriggerState(), first, now=T0, run={"id": "r1"})
    second = decide([old, new, alert(retrain=None)], state, now=T0, cooldown=0, in_flight=False)
    assert second.triggered
    assert [a.name for a in second.incidents] == ["AccuracyDrop"]


def test_remembered_incidents_are_bounded() -> None:
    state = TriggerState()
    for i in range(1005):
        decision = decide(
            [alert(fingerprint=f"{i:04x}")], state, now=T0 + i, cooldown=0, in_flight=False
        )
        state = record_launch(state, decision, now=T0 + i, run={"id": str(i)})
    assert len(state.seen) == 1000
    assert "0000@2026-11-26T08:00:00Z" not in state.seen  # the oldest went first
    assert "03ec@2026-11-26T08:00:00Z" in state.seen


# -- the Alertmanager payload ---------------------------------------------------
def notification(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "version": "4",
        "status": "firing",
        "receiver": "conveyor",
        "groupKey": '{}:{alertname="FeatureDrift"}',
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "FeatureDrift", "retrain": "true"},
                "annotations": {"summary": "age drifted"},
                "startsAt": "2026-11-26T08:00:00.123Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus/graph",
                "fingerprint": "c0ffee",
            }
        ],
    }
    body.update(overrides)
    return body


def test_notification_to_alerts() -> None:
    [parsed] = AlertNotification.model_validate(notification()).to_alerts()
    assert parsed.incident == "c0ffee@2026-11-26T08:00:00.123Z"
    assert parsed.wants_retraining


def test_missing_fingerprint_falls_back_to_the_label_set() -> None:
    body = notification()
    del body["alerts"][0]["fingerprint"]
    [parsed] = AlertNotification.model_validate(body).to_alerts()
    assert parsed.fingerprint == label_fingerprint({"retrain": "true", "alertname": "FeatureDrift"})


def test_other_payload_versions_are_refused() -> None:
    with pytest.raises(ValidationError, match="version"):
        AlertNotification.model_validate(notification(version="3"))


# -- the service: state file and launcher -----------------------------------------
class FakeLauncher:
    """Records launches; its runs stay 'running' until told otherwise."""

    name = "fake"

    def __init__(self) -> None:
        self.launched: list[Sequence[str]] = []
        self.error: Exception | None = None
        self.finished: set[str] = set()

    def launch(self, *, reason: str, incidents: Sequence[str]) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        self.launched.append(list(incidents))
        return {"launcher": self.name, "id": f"run-{len(self.launched)}", "state": "running"}

    def status(self, run: dict[str, Any]) -> dict[str, Any]:
        if run["id"] in self.finished:
            return {**run, "state": "succeeded", "exit_code": 0}
        return run


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def state_file(tmp_path: Path) -> TriggerStateFile:
    return TriggerStateFile(tmp_path / "trigger" / "state.json")


def test_state_survives_a_restart(state_file: TriggerStateFile) -> None:
    clock, launcher = Clock(), FakeLauncher()
    first = RetrainTrigger(launcher, state_file, cooldown=3600, clock=clock)
    assert first.handle([alert()]).decision.result == "started"
    clock.now += 60
    restarted = RetrainTrigger(FakeLauncher(), TriggerStateFile(state_file.path), clock=clock)
    assert restarted.handle([alert()]).decision.result == "deduplicated"
    assert restarted.handle([alert(starts_at="later")]).decision.result == "cooldown"
    assert launcher.launched == [["f00d@2026-11-26T08:00:00Z"]]


def test_failed_launch_consumes_nothing(state_file: TriggerStateFile) -> None:
    clock, launcher = Clock(), FakeLauncher()
    trigger = RetrainTrigger(launcher, state_file, cooldown=3600, clock=clock)
    launcher.error = ServiceUnavailableError("Airflow at http://airflow did not answer")
    failed = trigger.handle([alert()])
    assert failed.decision.result == "failed" and failed.run is None
    assert "did not answer" in failed.decision.reason
    launcher.error = None
    retried = trigger.handle([alert()])  # Alertmanager's retry of the same notification
    assert retried.decision.result == "started"
    assert launcher.launched == [["f00d@2026-11-26T08:00:00Z"]]


def test_in_flight_until_the_launcher_says_finished(state_file: TriggerStateFile) -> None:
    clock, launcher = Clock(), FakeLauncher()
    trigger = RetrainTrigger(launcher, state_file, cooldown=0, clock=clock)
    started = trigger.handle([alert()])
    assert started.run is not None and started.run["id"] == "run-1"
    assert trigger.snapshot()["in_flight"] is True
    assert trigger.handle([alert(fingerprint="beef")]).decision.result == "in_flight"
    launcher.finished.add("run-1")
    snapshot = trigger.snapshot()
    assert snapshot["in_flight"] is False and snapshot["last_run"]["state"] == "succeeded"
    assert state_file.load().last_run == snapshot["last_run"]  # the update is persisted
    assert trigger.handle([alert(fingerprint="beef")]).decision.result == "started"


def test_started_run_is_described(state_file: TriggerStateFile) -> None:
    outcome = RetrainTrigger(FakeLauncher(), state_file, clock=Clock()).handle([alert()])
    answer = outcome.to_dict()
    assert answer["triggered"] is True and answer["result"] == "started"
    assert answer["incidents"] == ["f00d@2026-11-26T08:00:00Z"]
    assert answer["run"]["id"] == "run-1"
    assert answer["run"]["triggered_at"] == "2027-01-15T08:00:00+00:00"


def test_unreadable_state_file_names_the_file(state_file: TriggerStateFile) -> None:
    state_file.path.parent.mkdir(parents=True)
    state_file.path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"state\.json.*delete it"):
        state_file.load()


def test_negative_cooldown_is_refused(state_file: TriggerStateFile) -> None:
    with pytest.raises(ConfigError, match="cooldown"):
        RetrainTrigger(FakeLauncher(), state_file, cooldown=-1)
