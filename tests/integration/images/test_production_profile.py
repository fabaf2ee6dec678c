"""The production profile, every part in its image on a read-only root filesystem:

``conveyor-mlflow`` (metadata in a real PostgreSQL, artifacts proxied to a real S3 server,
basic auth on), a ``conveyor run`` in ``conveyor-pipeline`` that registers through it and
keeps its dataset in a DVC remote on the same S3 store, and ``conveyor-serve`` following
the champion it promoted. Credentials reach each container as environment variables.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.integration.data_sources.conftest import PostgresServer
from tests.integration.faults.conftest import CONVEYOR, clean_env, free_port
from tests.integration.images.conftest import (
    Container,
    healthcheck,
    logs,
    podman,
    wait_answering,
)
from tests.s3_server import S3Server

pytestmark = pytest.mark.integration

MODEL = "churn-demo"
ADMIN = "admin"
SIGNING_KEY = "production-profile-signing-key-32+"
UID = 10001


@dataclass(frozen=True)
class Stores:
    postgres: PostgresServer
    s3: S3Server
    bucket: str
    password: str  # the tracking server's admin password

    def s3_env(self) -> list[str]:
        return [f"--env={k}={v}" for k, v in self.s3.env().items()]

    def client_env(self, tracking: Container) -> list[str]:
        """What a client container needs: the server, its credentials, the signing key."""
        return [
            f"--env=MLFLOW_TRACKING_URI={tracking.url}",
            f"--env=MLFLOW_TRACKING_USERNAME={ADMIN}",
            f"--env=MLFLOW_TRACKING_PASSWORD={self.password}",
            f"--env=CONVEYOR_SIGNING_KEY={SIGNING_KEY}",
            "--env=MLFLOW_DISABLE_TELEMETRY=true",
        ]


def create_database(server: PostgresServer, name: str) -> str:
    import psycopg

    with psycopg.connect(server.url(), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return server.url(scheme="postgresql+psycopg").rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="module")
def stores(postgres: PostgresServer, s3_server: S3Server) -> Stores:
    return Stores(postgres, s3_server, s3_server.create_bucket("mlflow"), secrets.token_hex(12))


@pytest.fixture(scope="module")
def backend(stores: Stores) -> str:
    """The tracking server's database (a SQLAlchemy URL naming the psycopg driver)."""
    return create_database(stores.postgres, f"mlflow_{secrets.token_hex(4)}")


@pytest.fixture(scope="module")
def tracking(
    mlflow_image: str, stores: Stores, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Container]:
    """``conveyor-mlflow``: PostgreSQL backend, artifacts proxied to S3, basic auth on."""
    users = create_database(stores.postgres, f"mlflow_auth_{secrets.token_hex(4)}")
    config = tmp_path_factory.mktemp("mlflow-auth") / "basic_auth.ini"
    config.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = {users}\nadmin_username = {ADMIN}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
        encoding="utf-8",
    )
    config.chmod(0o644)
    port = free_port()
    name = f"conveyor-mlflow-test-{port}"
    started = podman(
        "run", "--detach", "--read-only", "--name", name, "--network", "host",
        "--volume", f"{config}:/etc/mlflow/basic_auth.ini:ro",
        f"--env=MLFLOW_BACKEND_STORE_URI={backend}",
        f"--env=MLFLOW_ARTIFACTS_DESTINATION=s3://{stores.bucket}/mlartifacts",
        "--env=MLFLOW_AUTH_CONFIG_PATH=/etc/mlflow/basic_auth.ini",
        f"--env=MLFLOW_AUTH_ADMIN_PASSWORD={stores.password}",
        f"--env=MLFLOW_FLASK_SERVER_SECRET_KEY={secrets.token_hex(16)}",
        "--env=MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false",
        *stores.s3_env(),
        "--env=MLFLOW_HOST=127.0.0.1", f"--env=MLFLOW_PORT={port}",
        mlflow_image, "--workers", "1", "--app-name", "basic-auth",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    running = Container(name, f"http://127.0.0.1:{port}")
    try:
        wait_answering(running, "/health")
        yield running
    finally:
        podman("rm", "--force", "--time", "5", name)


@dataclass(frozen=True)
class Trained:
    run: subprocess.CompletedProcess[str]
    project: Path


@pytest.fixture(scope="module")
def trained(
    pipeline_image: str,
    stores: Stores,
    tracking: Container,
    tmp_path_factory: pytest.TempPathFactory,
) -> Trained:
    """A demo project (GX, DVC on S3, ONNX: the full default pipeline) run by the image."""
    project = tmp_path_factory.mktemp("pipeline-project") / "churn"
    made = subprocess.run(
        [CONVEYOR, "demo", "--dir", str(project), "--rows", "600"],
        env=clean_env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    config = project / "conveyor.yaml"
    config.write_text(
        config.read_text(encoding="utf-8") + f"versioning:\n  remote: s3://{stores.bucket}/dvc\n",
        encoding="utf-8",
    )
    for path in [project, *project.rglob("*")]:
        shutil.chown(path, UID, UID)
    run = podman(
        "run", "--rm", "--read-only", "--network", "host",
        "--volume", f"{project}:/project",
        *stores.client_env(tracking), *stores.s3_env(),
        pipeline_image, "run",
        timeout=600,
    )  # fmt: skip
    return Trained(run, project)


@pytest.fixture(scope="module")
def served(
    serve_image: str, stores: Stores, tracking: Container, trained: Trained
) -> Iterator[Container]:
    """``conveyor-serve`` following the champion through the authenticated server."""
    assert trained.run.returncode == 0, trained.run.stdout[-2000:] + trained.run.stderr[-2000:]
    port = free_port()
    name = f"conveyor-serve-prod-{port}"
    started = podman(
        "run", "--detach", "--read-only", "--name", name, "--network", "host",
        f"--env=CONVEYOR_SERVE_MODEL_URI=models:/{MODEL}@champion",
        *stores.client_env(tracking),
        "--env=CONVEYOR_SERVE_HOST=127.0.0.1", f"--env=CONVEYOR_SERVE_PORT={port}",
        serve_image,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    running = Container(name, f"http://127.0.0.1:{port}")
    try:
        wait_answering(running, "/readyz")
        yield running
    finally:
        podman("rm", "--force", "--time", "5", name)


def test_tracking_server_healthcheck_passes(tracking: Container) -> None:
    result = healthcheck(tracking.name)
    assert result.returncode == 0, result.stdout + result.stderr + logs(tracking.name)


def test_tracking_server_refuses_requests_without_credentials(tracking: Container) -> None:
    response = httpx.get(f"{tracking.url}/api/2.0/mlflow/registered-models/search", timeout=10)
    assert response.status_code == 401


def test_pipeline_run_in_its_image_succeeds(trained: Trained) -> None:
    assert trained.run.returncode == 0, trained.run.stdout[-3000:] + trained.run.stderr[-3000:]


def test_champion_is_registered_in_postgres(backend: str, trained: Trained) -> None:
    import psycopg

    with psycopg.connect(backend.replace("postgresql+psycopg://", "postgresql://")) as connection:
        aliases = connection.execute(
            "SELECT alias FROM registered_model_aliases WHERE name = %s", (MODEL,)
        ).fetchall()
    assert ("champion",) in aliases


def test_model_artifacts_are_in_the_s3_bucket(stores: Stores, trained: Trained) -> None:
    listed = stores.s3.client().list_objects_v2(Bucket=stores.bucket, Prefix="mlartifacts/")
    keys = [item["Key"] for item in listed.get("Contents", [])]
    assert any(key.endswith("MLmodel") for key in keys), keys[:20]


def test_dataset_is_pushed_to_the_dvc_remote_on_s3(stores: Stores, trained: Trained) -> None:
    listed = stores.s3.client().list_objects_v2(Bucket=stores.bucket, Prefix="dvc/")
    assert listed.get("KeyCount", 0) > 0


def test_serving_image_healthcheck_passes(served: Container) -> None:
    result = healthcheck(served.name)
    assert result.returncode == 0, result.stdout + result.stderr + logs(served.name)


def test_serving_image_follows_the_champion_through_auth(served: Container) -> None:
    response = httpx.get(f"{served.url}/v2/models/{MODEL}", timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["versions"] == ["1"]


def test_serving_image_answers_predictions(served: Container, trained: Trained) -> None:
    import pandas as pd

    rows = pd.read_csv(trained.project / "data" / "churn.csv").drop(columns="churned").head(5)
    payload = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
    response = httpx.post(f"{served.url}/invocations", json=payload, timeout=30)
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 5
