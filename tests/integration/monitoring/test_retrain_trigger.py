"""The retraining trigger for real: `conveyor monitor serve-webhook` starts `conveyor run`.

The receiver runs as a user starts it (subprocess, free port) on the trained demo project;
Alertmanager's webhook payloads go in over HTTP; the triggered run is a real `conveyor run`
of the project (its steps are reused from the fixture's run, so it takes seconds).
Also: the pipeline metrics a real `conveyor run` writes for node-exporter pass `promtool`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.monitoring.prometheus_stack import run_tool

pytestmark = pytest.mark.integration

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))


@dataclass(frozen=True)
class Receiver:
    url: str
    runs_dir: Path
    log: Path
    state: Path  # the trigger's state file: the last run's pid and log are only here


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"receiver exited: {log.read_text()}"
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"receiver did not answer /healthz in 60 s: {log.read_text()}")


def _last_run(state: Path) -> dict[str, Any]:
    """The last run as the trigger's state file records it (pid, log, command)."""
    if not state.is_file():
        return {}
    return dict(json.loads(state.read_text(encoding="utf-8")).get("last_run") or {})


def _stop_launched_run(state: Path) -> None:
    """Leave no training run behind if a test failed while one was in flight."""
    last = _last_run(state)
    if last.get("state") == "running" and last.get("pid"):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(last["pid"]), signal.SIGTERM)  # its own session: pgid == pid


@pytest.fixture
def receiver(trained_demo: Path, tmp_path: Path) -> Iterator[Receiver]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CONVEYOR_"))}
    log = tmp_path / "receiver.log"
    state = tmp_path / "trigger-state.json"
    argv = [
        CONVEYOR, "monitor", "serve-webhook", "-c", str(trained_demo), "--port", str(port),
        "--cooldown", "3600", "--state", str(state),
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log)
        yield Receiver(url, trained_demo.parent / ".conveyor" / "runs", log, state)
    finally:
        if process.poll() is None:
            _stop_launched_run(state)
        process.terminate()
        process.wait(timeout=20)


def _notification(starts_at: str, *, status: str = "firing") -> dict[str, Any]:
    labels = {
        "alertname": "FeatureDrift",
        "retrain": "true",
        "severity": "warning",
        "model": "churn-demo",
        "version": "1",
        "feature": "age",
    }
    return {
        "version": "4",
        "status": status,
        "receiver": "conveyor-retrain",
        "groupKey": '{}/{retrain="true"}:{alertname="FeatureDrift", model="churn-demo"}',
        "truncatedAlerts": 0,
        "groupLabels": {"alertname": "FeatureDrift", "model": "churn-demo"},
        "commonLabels": labels,
        "commonAnnotations": {"summary": "Feature age of churn-demo v1 drifted"},
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": "Feature age of churn-demo v1 drifted"},
                "startsAt": starts_at,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": "3b15fd7e27ab5ad1",
            }
        ],
    }


def _post(receiver: Receiver, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{receiver.url}/alerts", json=body, timeout=30)


def _wait_for_run(receiver: Receiver, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last: dict[str, Any] = httpx.get(f"{receiver.url}/healthz", timeout=5).json()["last_run"]
        if last["state"] != "running":
            return last
        time.sleep(0.5)
    pytest.fail(f"the triggered run did not finish in {timeout} s")


def test_one_run_per_incident_then_cooldown(receiver: Receiver) -> None:
    before = {p.name for p in receiver.runs_dir.iterdir()}

    first = _post(receiver, _notification("2026-11-26T08:00:00.000Z"))
    assert first.status_code == 200, first.text
    started = first.json()
    assert started["triggered"] is True and started["result"] == "started"
    assert started["run"]["launcher"] == "local" and started["run"]["state"] == "running"

    again = _post(receiver, _notification("2026-11-26T08:00:00.000Z"))
    assert again.json()["result"] == "deduplicated" and again.json()["triggered"] is False

    new_incident = _post(receiver, _notification("2026-11-26T09:30:00.000Z"))
    assert new_incident.json()["result"] == "cooldown"
    assert "cooldown 3600s" in new_incident.json()["reason"]

    resolved = _post(receiver, _notification("2026-11-26T09:30:00.000Z", status="resolved"))
    assert resolved.json()["result"] == "ignored"

    bad = httpx.post(f"{receiver.url}/alerts", content=b'{"alerts": "none"}', timeout=10)
    assert bad.status_code == 422
    assert "not an Alertmanager webhook notification" in bad.json()["detail"]

    finished = _wait_for_run(receiver)
    recorded = _last_run(receiver.state)
    assert finished["state"] == "succeeded", Path(recorded["log"]).read_text()
    assert finished["exit_code"] == 0
    assert not {"pid", "log", "command"} & set(finished)  # /healthz shows no host details
    assert {"pid", "log", "command"} <= set(recorded)
    new_runs = {p.name for p in receiver.runs_dir.iterdir()} - before
    assert new_runs == {finished["run_id"]}  # exactly one `conveyor run`, and we know which
    record = json.loads((receiver.runs_dir / finished["run_id"] / "record.json").read_text())
    assert record["status"] == "succeeded"
    assert "promote" in record["steps"]  # it went through the promotion gate

    metrics = httpx.get(f"{receiver.url}/metrics", timeout=5).text
    for result, count in (("started", 1), ("deduplicated", 1), ("cooldown", 1), ("ignored", 1)):
        assert f'conveyor_retrain_triggers_total{{result="{result}"}} {count}.0' in metrics


def test_a_run_writes_pipeline_metrics_that_promtool_accepts(trained_demo: Path) -> None:
    project = trained_demo.parent
    textfile = project / ".conveyor" / "metrics" / "conveyor_pipeline.prom"
    text = textfile.read_text(encoding="utf-8")
    checked = run_tool("promtool", "check", "metrics", stdin=text)  # fails if not installed
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # the values must be those of the project's last run
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    pipeline = (("pipeline", "churn-demo"),)
    assert values[("conveyor_pipeline_last_run_success", pipeline)] == 1.0
    assert values[("conveyor_pipeline_validation_passed", pipeline)] == 1.0
    assert values[("conveyor_pipeline_promoted", pipeline)] == 1.0
    runs = sorted((project / ".conveyor" / "runs").iterdir())
    record = json.loads((runs[-1] / "record.json").read_text())
    assert record["metrics"]["textfile"] == {"path": str(textfile), "ok": True}
    assert (
        values[("conveyor_pipeline_data_rows", pipeline)]
        == record["steps"]["ingest"]["summary"]["rows"]
    )
    roc_auc = record["steps"]["evaluate"]["summary"]["metrics"]["roc_auc"]
    assert values[("conveyor_pipeline_model_metric", (("metric", "roc_auc"), *pipeline))] == roc_auc
    steps = {k[1][1][1] for k in values if k[0] == "conveyor_pipeline_step_duration_seconds"}
    assert steps == set(record["steps"])
