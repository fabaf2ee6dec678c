"""The serving image: non-root, read-only, labelled, lean, and it serves a registered model."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tests.integration.faults.conftest import MlflowServer
from tests.integration.images.conftest import Container, healthcheck, podman, wait_answering
from tests.integration.serving.conftest import (
    FEATURES,
    free_port,
    make_table,
    register_conveyor_model,
    rows_payload,
)

from conveyor.registry.store import ModelRegistry

pytestmark = pytest.mark.integration

MODEL = "image-test"
SIGNING_KEY = "image-test-signing-key-of-32-chars!"


@pytest.mark.parametrize("package", ["great_expectations", "dvc", "airflow", "torch", "matplotlib"])
def test_holds_no_pipeline_stack(serve_image: str, package: str) -> None:
    probe = (
        f"import importlib.util, sys; sys.exit(importlib.util.find_spec('{package}') is not None)"
    )
    result = podman("run", "--rm", "--entrypoint", "python3", serve_image, "-c", probe)
    assert result.returncode == 0, f"{package} is in the serving image"


@pytest.fixture(scope="module")
def container(serve_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    """The image, with a read-only root filesystem, following the champion alias of a model
    registered on a real ``mlflow server`` (artifacts proxied)."""
    server = MlflowServer(tmp_path_factory.mktemp("image-tracking"))
    server.start()
    port = free_port()
    name = f"conveyor-serve-test-{port}"
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("CONVEYOR_SIGNING_KEY", SIGNING_KEY)
            register_conveyor_model(ModelRegistry(server.url), make_table(), name=MODEL, key="k")
        started = podman(
            "run", "--detach", "--read-only", "--name", name, "--network", "host",
            "--env", f"CONVEYOR_SERVE_MODEL_URI=models:/{MODEL}@champion",
            "--env", f"MLFLOW_TRACKING_URI={server.url}",
            "--env", f"CONVEYOR_SIGNING_KEY={SIGNING_KEY}",
            "--env", "CONVEYOR_SERVE_HOST=127.0.0.1", "--env", f"CONVEYOR_SERVE_PORT={port}",
            serve_image,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        running = Container(name, f"http://127.0.0.1:{port}")
        wait_answering(running, "/readyz")
        yield running
    finally:
        podman("rm", "--force", "--time", "5", name)
        server.kill()


def test_its_healthcheck_passes_once_ready(container: Container) -> None:
    result = healthcheck(container.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_serves_predictions_with_a_read_only_root(container: Container) -> None:
    response = httpx.post(f"{container.url}/invocations", json=rows_payload(7), timeout=30.0)
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 7


def test_rejects_a_bad_request_with_422(container: Container) -> None:
    payload = {"dataframe_split": {"columns": FEATURES[:1], "data": [[1.0]]}}
    response = httpx.post(f"{container.url}/invocations", json=payload, timeout=30.0)
    assert response.status_code == 422
