"""Launchers and the watch loop: the Airflow REST client and the Prometheus poller against
tiny local HTTP servers that record requests, and the local subprocess launcher."""

from __future__ import annotations

import hashlib
import http.server
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conveyor.errors import ConfigError, PipelineError, ServiceUnavailableError
from conveyor.monitoring.launchers import AirflowLauncher, LocalLauncher
from conveyor.monitoring.trigger import RetrainTrigger, TriggerStateFile
from conveyor.monitoring.watch import alerts_from_prometheus, fetch_prometheus_alerts, watch
from conveyor.settings import Settings

Reply = tuple[int, dict[str, Any]]


@dataclass
class FakeServer:
    """Records (method, path, headers, body); answers with ``routes[(method, path)]``."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    routes: dict[tuple[str, str], Callable[[dict[str, Any]], Reply]] = field(default_factory=dict)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            request = {"method": self.command, "path": self.path, "body": body}
            request["authorization"] = self.headers.get("Authorization")
            fake.requests.append(request)
            route = fake.routes.get((self.command, self.path))
            status, answer = route(request) if route else (404, {"detail": "Not Found"})
            raw = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def log_message(self, *args: Any) -> None:
            return

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield fake
    httpd.shutdown()
    httpd.server_close()


DAG_RUNS = "/api/v2/dags/conveyor_training/dagRuns"


def airflow(server: FakeServer) -> AirflowLauncher:
    tokens = iter(["jwt-1", "jwt-2", "jwt-3"])

    def token(request: dict[str, Any]) -> Reply:
        if request["body"] != {"username": "admin", "password": "pw"}:
            return 401, {"detail": "Invalid credentials"}
        return 201, {"access_token": next(tokens)}

    server.routes[("POST", "/auth/token")] = token
    return AirflowLauncher(
        server.url, username="admin", password="pw", dag_config="/srv/project/conveyor.yaml"
    )


def dag_run(run_id: str, state: str = "queued") -> dict[str, Any]:
    return {"dag_run_id": run_id, "dag_id": "conveyor_training", "state": state}


def test_airflow_trigger_request_shape(server: FakeServer) -> None:
    launcher = airflow(server)
    server.routes[("POST", DAG_RUNS)] = lambda r: (200, dag_run(r["body"]["dag_run_id"]))
    run = launcher.launch(reason="FeatureDrift firing", incidents=["abc@t1"])
    token_call, trigger_call = server.requests
    assert token_call["method"] == "POST" and token_call["authorization"] is None
    assert trigger_call["authorization"] == "Bearer jwt-1"
    body = trigger_call["body"]
    assert body["conf"] == {"config": "/srv/project/conveyor.yaml"}
    assert body["logical_date"] is None  # required (nullable) by Airflow 3's API
    assert body["dag_run_id"].startswith("conveyor_retrain__")
    assert body["note"] == "FeatureDrift firing"
    assert run["state"] == "running" and run["airflow_state"] == "queued"
    assert run["id"] == body["dag_run_id"]
    # the same incidents always map to the same DAG run id (idempotent retries)
    again = launcher.launch(reason="x", incidents=["abc@t1"])
    assert again["id"] == run["id"]
    assert launcher.launch(reason="x", incidents=["abc@t2"])["id"] != run["id"]
    assert sum(r["path"] == "/auth/token" for r in server.requests) == 1  # token reused


def test_airflow_lost_answer_is_the_same_run(server: FakeServer) -> None:
    """A retry of a launch Airflow already accepted (409) returns that run, not an error."""
    launcher = airflow(server)
    run_id = "conveyor_retrain__" + hashlib.sha256(b"abc@t1").hexdigest()[:16]
    server.routes[("POST", DAG_RUNS)] = lambda r: (409, {"detail": "already exists"})
    server.routes[("GET", f"{DAG_RUNS}/{run_id}")] = lambda r: (200, dag_run(run_id, "running"))
    run = launcher.launch(reason="r", incidents=["abc@t1"])
    assert run["id"] == run_id and run["airflow_state"] == "running"
    assert server.requests[-1]["method"] == "GET"
    assert server.requests[-1]["authorization"] == "Bearer jwt-1"


def test_airflow_expired_token_is_renewed_once(server: FakeServer) -> None:
    launcher = airflow(server)

    def needs_second_token(request: dict[str, Any]) -> Reply:
        if request["authorization"] != "Bearer jwt-2":
            return 401, {"detail": "Token expired"}
        return 200, dag_run(request["body"]["dag_run_id"])

    server.routes[("POST", DAG_RUNS)] = needs_second_token
    assert launcher.launch(reason="r", incidents=["i"])["state"] == "running"
    assert [r["path"] for r in server.requests] == [
        "/auth/token",
        DAG_RUNS,
        "/auth/token",
        DAG_RUNS,
    ]


def test_airflow_status_maps_states(server: FakeServer) -> None:
    launcher = airflow(server)
    server.routes[("GET", f"{DAG_RUNS}/run-1")] = lambda r: (200, dag_run("run-1", "success"))
    assert launcher.status({"id": "run-1", "state": "running"})["state"] == "succeeded"
    server.routes[("GET", f"{DAG_RUNS}/run-1")] = lambda r: (200, dag_run("run-1", "failed"))
    assert launcher.status({"id": "run-1", "state": "running"})["state"] == "failed"


@pytest.mark.parametrize(
    ("status", "error", "needle"),
    [
        (404, ConfigError, "has no DAG 'conveyor_training'"),
        (403, ConfigError, "refused user 'admin'"),
        (400, PipelineError, "refused the DAG run (400)"),
        (503, ServiceUnavailableError, "answered 503"),
    ],
)
def test_airflow_refusals_are_clear_errors(
    server: FakeServer, status: int, error: type[Exception], needle: str
) -> None:
    launcher = airflow(server)
    server.routes[("POST", DAG_RUNS)] = lambda r: (status, {"detail": "nope"})
    with pytest.raises(error) as caught:
        launcher.launch(reason="r", incidents=["i"])
    assert needle in str(caught.value)


def test_airflow_bad_credentials(server: FakeServer) -> None:
    launcher = airflow(server)
    launcher.password = "wrong"
    with pytest.raises(ConfigError, match=r"refused user 'admin'.*Invalid credentials"):
        launcher.launch(reason="r", incidents=["i"])


def test_airflow_unreachable_is_transient() -> None:
    launcher = AirflowLauncher("http://127.0.0.1:9", username="a", password="b", dag_config="c")
    with pytest.raises(ServiceUnavailableError, match="did not answer"):
        launcher.launch(reason="r", incidents=["i"])


def test_airflow_from_settings_names_missing_variables() -> None:
    settings = Settings(airflow_url="http://af", airflow_username=None, airflow_password=None)
    with pytest.raises(ConfigError, match="CONVEYOR_AIRFLOW_USERNAME, CONVEYOR_AIRFLOW_PASSWORD"):
        AirflowLauncher.from_settings(dag_config="c", settings=settings)


def test_airflow_from_settings_takes_the_three_variables() -> None:
    settings = Settings(airflow_url="http://af:8080", airflow_username="u", airflow_password="p")
    launcher = AirflowLauncher.from_settings(dag_config="c", settings=settings)
    assert (launcher.url, launcher.username, launcher.password) == ("http://af:8080", "u", "p")


# -- local launcher -------------------------------------------------------------
FAKE_RUN = """
import json, pathlib, sys, time
runs = pathlib.Path(sys.argv[1])
run = runs / (time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-abcdef")
run.mkdir(parents=True)
(run / "record.json").write_text(json.dumps({"status": "succeeded"}))
print("argv", sys.argv[2:])
sys.exit(int(sys.argv[2]))
"""


@pytest.mark.parametrize(("code", "state"), [(0, "succeeded"), (1, "failed")])
def test_local_launcher_records_exit_code_and_run_id(tmp_path: Path, code: int, state: str) -> None:
    runs = tmp_path / ".conveyor" / "runs"
    command = [sys.executable, "-c", FAKE_RUN, str(runs), str(code)]
    config = tmp_path / "conveyor.yaml"
    launcher = LocalLauncher(config, runs_dir=runs, log_dir=tmp_path / "logs", command=command)
    run = launcher.launch(reason="r", incidents=["i"])
    assert run["state"] == "running" and run["command"][-3:] == ["run", "-c", str(config)]
    deadline = time.monotonic() + 20
    while (current := launcher.status(run))["state"] == "running":
        assert time.monotonic() < deadline, "the fake run did not finish"
        time.sleep(0.05)
    assert current["state"] == state and current["exit_code"] == code
    assert current["run_id"] == next(runs.iterdir()).name
    assert "'run', '-c'" in Path(current["log"]).read_text()


def test_local_launcher_cannot_start(tmp_path: Path) -> None:
    launcher = LocalLauncher(
        tmp_path / "c.yaml",
        runs_dir=tmp_path,
        log_dir=tmp_path / "logs",
        command=[str(tmp_path / "missing")],
    )
    with pytest.raises(PipelineError, match="cannot start"):
        launcher.launch(reason="r", incidents=["i"])


# -- watch loop -----------------------------------------------------------------
PROMETHEUS_ALERTS = {
    "status": "success",
    "data": {
        "alerts": [
            {
                "labels": {"alertname": "FeatureDrift", "retrain": "true", "feature": "age"},
                "state": "firing",
                "activeAt": "2026-11-26T08:00:00Z",
            },
            {
                "labels": {"alertname": "AccuracyDrop", "retrain": "true"},
                "state": "pending",
                "activeAt": "2026-11-26T08:01:00Z",
            },
        ]
    },
}


class CountingLauncher:
    name = "count"

    def __init__(self) -> None:
        self.launched: list[list[str]] = []

    def launch(self, *, reason: str, incidents: Any) -> dict[str, Any]:
        self.launched.append(list(incidents))
        return {"id": "run", "state": "succeeded"}

    def status(self, run: dict[str, Any]) -> dict[str, Any]:
        return run


def test_only_firing_alerts_are_read_from_the_answer() -> None:
    [alert] = alerts_from_prometheus(PROMETHEUS_ALERTS)
    assert (alert.name, alert.starts_at) == ("FeatureDrift", "2026-11-26T08:00:00Z")


def test_an_error_answer_is_an_unavailable_prometheus() -> None:
    with pytest.raises(ServiceUnavailableError, match="bad_data"):
        alerts_from_prometheus({"status": "error", "error": "bad_data"})


# The poll loop against a real Prometheus: tests/integration/monitoring/test_watch_prometheus.py.
def test_watch_survives_an_unreachable_prometheus(tmp_path: Path) -> None:
    trigger = RetrainTrigger(CountingLauncher(), TriggerStateFile(tmp_path / "s.json"))
    assert watch(trigger, "http://127.0.0.1:9", interval=0.01, ticks=2) == []
    with pytest.raises(ServiceUnavailableError, match="did not answer"):
        fetch_prometheus_alerts("http://127.0.0.1:9")
