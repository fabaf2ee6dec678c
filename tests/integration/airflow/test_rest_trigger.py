"""The retraining trigger reaches `conveyor_training` through a real Airflow 3 API server:
authenticated with a JWT from /auth/token, one DAG run per incident, bad credentials refused."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from tests.integration.airflow.conftest import AIRFLOW_VENV, Airflow

from conveyor.errors import ConfigError
from conveyor.monitoring.launchers import AirflowLauncher

pytestmark = pytest.mark.integration

USER = "conveyor-trigger"
START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ApiServer:
    url: str
    password: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def api_server(airflow: Airflow) -> Iterator[ApiServer]:
    """`airflow api-server` with one admin user of the simple auth manager; DAGs serialized."""
    password = secrets.token_urlsafe(16)
    passwords = airflow.home / "passwords.json"
    passwords.write_text(json.dumps({USER: password}), encoding="utf-8")
    extra = {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
    }
    serialized = airflow("dags", "reserialize", extra_env=extra, timeout=300)
    assert serialized.returncode == 0, serialized.stdout[-3000:]
    port = free_port()
    log = airflow.home / "api-server.log"
    argv = [str(AIRFLOW_VENV / "bin" / "airflow"), "api-server", "--port", str(port)]
    argv += ["--host", "127.0.0.1", "--workers", "1"]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv, env={**airflow.env, **extra}, cwd=airflow.home, stdout=sink, stderr=sink
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"airflow api-server exited: {log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"airflow api-server not up in {START_TIMEOUT_S} s")
            time.sleep(0.5)
        yield ApiServer(url, password)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_an_incident_becomes_one_authenticated_dag_run(api_server: ApiServer) -> None:
    launcher = AirflowLauncher(
        api_server.url, username=USER, password=api_server.password, dag_config="/p/conveyor.yaml"
    )
    run = launcher.launch(reason="FeatureDrift on age", incidents=["fp-1@2026-11-26T09:00:00Z"])
    again = launcher.launch(reason="FeatureDrift on age", incidents=["fp-1@2026-11-26T09:00:00Z"])
    assert again["id"] == run["id"]  # the same incident is the same DAG run, never a second one
    token = httpx.post(
        f"{api_server.url}/auth/token",
        json={"username": USER, "password": api_server.password},
        timeout=10,
    ).json()["access_token"]
    answer = httpx.get(
        f"{api_server.url}/api/v2/dags/conveyor_training/dagRuns",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    ours = [r for r in answer.json()["dag_runs"] if r["dag_run_id"] == run["id"]]
    assert len(ours) == 1  # other tests of the session ran this DAG too: only count ours
    assert ours[0]["conf"] == {"config": "/p/conveyor.yaml"}
    # No scheduler runs in these tests: the run stays queued, which the launcher calls running.
    status = launcher.status(run)
    assert (status["state"], status["airflow_state"]) == ("running", "queued")


def test_wrong_credentials_are_a_clear_usage_error(api_server: ApiServer) -> None:
    launcher = AirflowLauncher(
        api_server.url, username=USER, password="not-the-password", dag_config="/p/conveyor.yaml"
    )
    with pytest.raises(ConfigError, match=f"refused user {USER!r}"):
        launcher.launch(reason="test", incidents=["fp-2@2026-11-26T09:00:00Z"])
