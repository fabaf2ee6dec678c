"""The compose stack (deploy/compose) brought up with podman-compose and driven end to end.

``stack.py up --local`` starts PostgreSQL, SeaweedFS S3, the MLflow server (PostgreSQL,
S3, basic auth), two serving replicas behind HAProxy, Prometheus, Alertmanager, the
retraining webhook and Airflow from this checkout's images (third-party services from the
local Debian-built image). ``stack.py seed`` puts a table in the bucket and runs the
pipeline container on it; then the replicas must serve the champion through the proxy,
Prometheus must scrape both, a training DAG run in Airflow must register the next version,
and a tracking-server outage must fail a run with 75 while the replicas keep serving.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.faults.conftest import free_port
from tests.integration.images.conftest import ROOT, images, podman, podman_env

__all__ = ["images"]

pytestmark = pytest.mark.integration

COMPOSE = ROOT / "deploy" / "compose"
STACK = [sys.executable, str(COMPOSE / "stack.py")]
MODEL = "churn-demo"
# A raw row as clients send it: a number as text, an integer column.
ROW = {
    "age": 41, "income": "52000", "tenure_months": 13, "monthly_charges": 70.5,
    "support_calls": 2, "plan": "basic", "region": "north", "payment_method": "card",
}  # fmt: skip
PORTS = ("S3", "MLFLOW", "PROXY", "PROMETHEUS", "ALERTMANAGER", "GRAFANA", "AIRFLOW")
CONVEYOR_DAGS = {"conveyor_training", "conveyor_monitoring", "conveyor_batch_scoring"}
DAG_RUN_TIMEOUT_S = 900.0
SECRETS = {
    "POSTGRES_PASSWORD": uuid.uuid4().hex,
    "MLFLOW_ADMIN_PASSWORD": uuid.uuid4().hex,
    "MLFLOW_FLASK_SECRET_KEY": uuid.uuid4().hex,
    "CONVEYOR_SIGNING_KEY": uuid.uuid4().hex,
    "S3_ACCESS_KEY": uuid.uuid4().hex[:16],
    "S3_SECRET_KEY": uuid.uuid4().hex,
    "CONVEYOR_FEEDBACK_TOKEN": uuid.uuid4().hex,
    "CONVEYOR_WEBHOOK_TOKEN": uuid.uuid4().hex,
    "GRAFANA_ADMIN_PASSWORD": uuid.uuid4().hex,
    "AIRFLOW_ADMIN_PASSWORD": uuid.uuid4().hex,
    "AIRFLOW_JWT_SECRET": uuid.uuid4().hex,
    "AIRFLOW_FERNET_KEY": base64.urlsafe_b64encode(uuid.uuid4().bytes * 2).decode(),
}


@dataclass(frozen=True)
class Stack:
    """A running stack: where its published ports answer."""

    project: str
    env_file: Path
    ports: dict[str, int]
    seeded: subprocess.CompletedProcess[str]

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def airflow(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An Airflow REST call as the admin user (a JWT from /auth/token)."""
        token = httpx.post(
            f"{self.url('AIRFLOW')}/auth/token",
            json={"username": "admin", "password": SECRETS["AIRFLOW_ADMIN_PASSWORD"]},
            timeout=10,
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.request(
            method, f"{self.url('AIRFLOW')}{path}", headers=headers, timeout=30, **kwargs
        )

    def tracking(self, path: str, **params: str) -> httpx.Response:
        """GET a tracking-server REST path as the admin user."""
        return httpx.get(
            f"{self.url('MLFLOW')}/api/2.0/mlflow/{path}",
            params=params,
            auth=("admin", SECRETS["MLFLOW_ADMIN_PASSWORD"]),
            timeout=10,
        )


def stack_command(
    action: str, env_file: Path, project: str, *extra: str, timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STACK, action, "--local", "--env-file", str(env_file), "--project-name", project, *extra],
        env=podman_env(), capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def thirdparty() -> None:
    """The local stand-in for the third-party images (idempotent: reused when built)."""
    built = subprocess.run(
        ["bash", str(COMPOSE / "local" / "build.sh"), sys.executable],
        env=podman_env(), capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]


@pytest.fixture(scope="module")
def stack(
    images: dict[str, str], thirdparty: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    ports = {name: free_port() for name in PORTS}
    env_file = tmp_path_factory.mktemp("stack") / ".env"
    env_file.write_text(
        "".join(f"{k}={v}\n" for k, v in SECRETS.items())
        + "".join(f"CONVEYOR_{name}_PORT={port}\n" for name, port in ports.items()),
        encoding="utf-8",
    )
    project = f"cvtest{uuid.uuid4().hex[:8]}"
    try:
        started = stack_command("up", env_file, project, timeout=900)
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        seeded = stack_command("seed", env_file, project, "--rows", "1500", timeout=1200)
        yield Stack(project, env_file, ports, seeded)
    finally:
        stack_command("down", env_file, project, "--volumes", timeout=300)


def test_pipeline_container_trains_on_the_s3_table_and_serves_it(stack: Stack) -> None:
    assert stack.seeded.returncode == 0, stack.seeded.stdout[-3000:] + stack.seeded.stderr[-3000:]


def test_champion_is_registered_through_the_tracking_server(stack: Stack) -> None:
    response = stack.tracking("registered-models/alias", name=MODEL, alias="champion")
    assert response.status_code == 200, response.text
    assert response.json()["model_version"]["version"] == "1"


def test_training_data_was_read_from_the_bucket(stack: Stack) -> None:
    response = stack.tracking("registered-models/alias", name=MODEL, alias="champion")
    run_id = response.json()["model_version"]["run_id"]
    run = stack.tracking("runs/get", run_id=run_id).json()["run"]
    sources = [item["dataset"]["source"] for item in run["inputs"]["dataset_inputs"]]
    assert sources == ['{"uri": "s3://conveyor/data/churn.csv"}']


def test_tracking_server_refuses_requests_without_credentials(stack: Stack) -> None:
    response = httpx.get(
        f"{stack.url('MLFLOW')}/api/2.0/mlflow/registered-models/search", timeout=10
    )
    assert response.status_code == 401


def test_predictions_succeed_through_the_proxy(stack: Stack) -> None:
    answers = [
        httpx.post(
            f"{stack.url('PROXY')}/invocations", json={"dataframe_records": [ROW]}, timeout=30
        )
        for _ in range(20)
    ]
    assert [a.status_code for a in answers] == [200] * 20, answers[0].text


def test_both_replicas_answer_with_the_champion(stack: Stack) -> None:
    # Round robin: consecutive requests reach both replicas; each says which version answered.
    served = {
        httpx.get(f"{stack.url('PROXY')}/v2/models/{MODEL}", timeout=10).json()["versions"][0]
        for _ in range(4)
    }
    assert served == {"1"}


def test_prometheus_scrapes_both_replicas(stack: Stack) -> None:
    query = 'up{job="conveyor-serve"} == 1'
    deadline_rounds = 30
    instances: set[str] = set()
    for _ in range(deadline_rounds):
        result = httpx.get(
            f"{stack.url('PROMETHEUS')}/api/v1/query", params={"query": query}, timeout=10
        )
        instances = {s["metric"]["instance"] for s in result.json()["data"]["result"]}
        if instances == {"serve-1:8080", "serve-2:8080"}:
            break
        subprocess.run(["sleep", "2"], check=True)
    assert instances == {"serve-1:8080", "serve-2:8080"}


def test_prometheus_sees_the_champion_loaded_on_both_replicas(stack: Stack) -> None:
    query = f'conveyor_model_info{{job="conveyor-serve", name="{MODEL}"}}'
    found: set[tuple[str, str]] = set()
    for _ in range(30):
        result = httpx.get(
            f"{stack.url('PROMETHEUS')}/api/v1/query", params={"query": query}, timeout=10
        )
        found = {
            (s["metric"]["instance"], s["metric"]["version"])
            for s in result.json()["data"]["result"]
        }
        if len(found) == 2:
            break
        subprocess.run(["sleep", "2"], check=True)
    assert found == {("serve-1:8080", "1"), ("serve-2:8080", "1")}


def test_prometheus_loaded_the_shipped_rules(stack: Stack) -> None:
    groups = httpx.get(f"{stack.url('PROMETHEUS')}/api/v1/rules", timeout=10).json()["data"][
        "groups"
    ]
    files = {Path(group["file"]).name for group in groups}
    assert files == {path.name for path in (ROOT / "deploy/prometheus/rules").glob("*.yml")}


def test_prometheus_sends_alerts_to_the_stack_alertmanager(stack: Stack) -> None:
    managers = httpx.get(f"{stack.url('PROMETHEUS')}/api/v1/alertmanagers", timeout=10).json()
    assert [m["url"] for m in managers["data"]["activeAlertmanagers"]] == [
        "http://alertmanager:9093/api/v2/alerts"
    ]


def test_compose_file_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in SECRETS.items() if k != "S3_SECRET_KEY"))
    result = subprocess.run(
        [str(Path(sys.executable).with_name("podman-compose")), "--env-file", str(env_file),
         "-f", str(COMPOSE / "compose.yaml"), "config"],
        env=podman_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    # podman-compose 1.6 fails the ${S3_SECRET_KEY:?...} interpolation with an uncaught
    # ValueError: python's exit status 1 (its own errors exit 1 too).
    assert result.returncode == 1, result.stdout + result.stderr
    assert "set S3_SECRET_KEY in .env" in result.stdout + result.stderr


def test_compose_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    shutil.copy(COMPOSE / "prometheus.yml", tmp_path / "prometheus.yml")
    shutil.copytree(ROOT / "deploy/prometheus/rules", tmp_path / "rules")
    result = subprocess.run(
        ["promtool", "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def parsed_dags(stack: Stack) -> set[str]:
    """The Conveyor DAGs Airflow's dag-processor has serialized (waits for all three)."""
    found: set[str] = set()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        listed = stack.airflow("GET", "/api/v2/dags", params={"dag_id_pattern": "conveyor"})
        found = {dag["dag_id"] for dag in listed.json()["dags"]}
        if found >= CONVEYOR_DAGS:
            break
        time.sleep(3)
    return found


def test_airflow_in_the_stack_parsed_every_conveyor_dag(parsed_dags: set[str]) -> None:
    assert parsed_dags == CONVEYOR_DAGS


def test_airflow_in_the_stack_reports_no_import_errors(stack: Stack, parsed_dags: set[str]) -> None:
    errors = stack.airflow("GET", "/api/v2/importErrors").json()
    assert errors["total_entries"] == 0, errors


@pytest.fixture(scope="module")
def training_dag_run(stack: Stack, parsed_dags: set[str]) -> dict[str, Any]:
    """One conveyor_training run triggered through the REST API, waited for to the end."""
    path = "/api/v2/dags/conveyor_training/dagRuns"
    body = {"logical_date": None, "conf": {"config": "/project/conveyor.yaml", "force": True}}
    started = stack.airflow("POST", path, json=body)
    assert started.status_code == 200, started.text
    run_id = started.json()["dag_run_id"]
    deadline = time.monotonic() + DAG_RUN_TIMEOUT_S
    run: dict[str, Any] = started.json()
    while time.monotonic() < deadline and run["state"] not in ("success", "failed"):
        time.sleep(5)
        run = stack.airflow("GET", f"{path}/{run_id}").json()
    tasks = stack.airflow("GET", f"{path}/{run_id}/taskInstances").json()["task_instances"]
    return {**run, "tasks": {t["task_id"]: t["state"] for t in tasks}}


def test_training_dag_succeeds_in_the_stack(training_dag_run: dict[str, Any]) -> None:
    assert training_dag_run["state"] == "success", training_dag_run["tasks"]


def test_training_dag_registers_a_new_version_through_the_stack(
    stack: Stack, training_dag_run: dict[str, Any]
) -> None:
    found = stack.tracking("model-versions/search", filter=f"name='{MODEL}'").json()
    assert sorted(int(v["version"]) for v in found["model_versions"]) == [1, 2]


@dataclass(frozen=True)
class Outage:
    """A training run and predictions while the tracking server is stopped."""

    run: subprocess.CompletedProcess[str]
    answers: list[int]


@pytest.fixture(scope="module")
def outage(stack: Stack) -> Iterator[Outage]:
    """Stop ``mlflow``, run the pipeline job and send predictions, then start it again.

    ``--force``: a run whose steps are all cached needs no tracking server and succeeds.
    """

    mlflow = f"{stack.project}_mlflow_1"
    stopped = podman("stop", "--time", "5", mlflow)
    assert stopped.returncode == 0, stopped.stderr
    try:
        run = subprocess.run(
            [str(Path(sys.executable).with_name("podman-compose")),
             "--env-file", str(stack.env_file), "--project-name", stack.project,
             "-f", str(COMPOSE / "compose.yaml"), "-f", str(COMPOSE / "compose.local.yaml"),
             "--profile", "jobs", "run", "--rm", "--no-deps",
             "-e", "CONVEYOR_REGISTRY_RETRIES=1", "-e", "CONVEYOR_REGISTRY_BACKOFF=0",
             "pipeline", "run", "--force"],
            env=podman_env(), capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        answers = [
            httpx.post(
                f"{stack.url('PROXY')}/invocations", json={"dataframe_records": [ROW]}, timeout=30
            ).status_code
            for _ in range(20)
        ]
        yield Outage(run, answers)
    finally:
        podman("start", mlflow)


def test_a_run_during_a_tracking_server_outage_exits_75(outage: Outage) -> None:
    assert outage.run.returncode == 75, outage.run.stdout[-3000:] + outage.run.stderr[-3000:]


def test_the_replicas_keep_serving_during_a_tracking_server_outage(outage: Outage) -> None:
    assert outage.answers == [200] * 20
