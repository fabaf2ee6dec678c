"""The serving image: non-root, read-only, labelled, lean, and it serves a registered model."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from tests.integration.faults.conftest import MlflowServer
from tests.integration.images.conftest import inspect, podman, version
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
READY_TIMEOUT_S = 120.0
SIGNING_KEY = "image-test-signing-key-of-32-chars!"


def test_runs_as_a_non_root_numeric_uid(serve_image: str) -> None:
    assert inspect(serve_image)["Config"]["User"] == "10001:10001"


def test_declares_a_healthcheck_on_readyz(serve_image: str) -> None:
    check = inspect(serve_image)["Healthcheck"]["Test"]  # podman reports it top-level
    assert any("/readyz" in part for part in check)


def test_labels_name_version_revision_and_source(serve_image: str) -> None:
    labels = inspect(serve_image)["Config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == version()
    assert len(labels["org.opencontainers.image.revision"]) == 40
    assert labels["org.opencontainers.image.source"] not in ("", "unknown")


def test_writable_paths_are_declared_volumes(serve_image: str) -> None:
    volumes = inspect(serve_image)["Config"]["Volumes"]
    assert set(volumes) == {"/var/lib/conveyor", "/tmp"}


@pytest.mark.parametrize(
    "package", ["great_expectations", "dvc", "airflow", "torch", "matplotlib", "pip"]
)
def test_holds_no_pipeline_stack(serve_image: str, package: str) -> None:
    probe = (
        f"import importlib.util, sys; sys.exit(importlib.util.find_spec('{package}') is not None)"
    )
    result = podman("run", "--rm", "--entrypoint", "python3", serve_image, "-c", probe)
    assert result.returncode == 0, f"{package} is in the serving image"


@pytest.fixture(scope="module")
def container(serve_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The image, with a read-only root filesystem, following the champion alias of a model
    registered on a real ``mlflow server`` (artifacts proxied); its URL."""
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
            serve_image, "serve", "--host", "127.0.0.1", "--port", str(port),
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        url = f"http://127.0.0.1:{port}"
        wait_ready(name, url)
        yield url
    finally:
        podman("rm", "--force", "--time", "5", name)
        server.kill()


def wait_ready(name: str, url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
        if state not in ("running", "created"):
            pytest.fail(f"container {state}: {podman('logs', name).stderr[-3000:]}")
        time.sleep(0.5)
    pytest.fail(f"not ready in {READY_TIMEOUT_S} s: {podman('logs', name).stderr[-3000:]}")


def test_serves_predictions_with_a_read_only_root(container: str) -> None:
    response = httpx.post(f"{container}/invocations", json=rows_payload(7), timeout=30.0)
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 7


def test_rejects_a_bad_request_with_422(container: str) -> None:
    payload = {"dataframe_split": {"columns": FEATURES[:1], "data": [[1.0]]}}
    response = httpx.post(f"{container}/invocations", json=payload, timeout=30.0)
    assert response.status_code == 422
