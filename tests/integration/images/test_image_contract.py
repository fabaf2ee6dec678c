"""What every Conveyor image promises: a numeric non-root user, declared writable paths, a
healthcheck, OCI labels, and no pip left inside."""

from __future__ import annotations

import pytest
from tests.integration.images.conftest import IMAGES, inspect, podman, version

pytestmark = pytest.mark.integration

VOLUMES = {
    "serve": {"/var/lib/conveyor", "/tmp"},
    "pipeline": {"/var/lib/conveyor", "/tmp", "/project"},
    "mlflow": {"/var/lib/conveyor", "/tmp"},
    "airflow": {"/var/lib/conveyor", "/tmp", "/project", "/var/log/airflow"},
}
HEALTH_PROBES = {
    "serve": "/readyz",
    "pipeline": "--version",
    "mlflow": "/health",
    "airflow": "/api/v2/monitor/health",
}


@pytest.mark.parametrize("image", IMAGES)
def test_runs_as_a_non_root_numeric_uid(images: dict[str, str], image: str) -> None:
    assert inspect(images[image])["Config"]["User"] == "10001:10001"


@pytest.mark.parametrize("image", IMAGES)
def test_declares_its_healthcheck(images: dict[str, str], image: str) -> None:
    check = inspect(images[image])["Healthcheck"]["Test"]  # podman reports it top-level
    assert any(HEALTH_PROBES[image] in part for part in check)


@pytest.mark.parametrize("image", IMAGES)
def test_labels_title_version_revision_and_source(images: dict[str, str], image: str) -> None:
    labels = inspect(images[image])["Config"]["Labels"]
    assert labels["org.opencontainers.image.title"] == f"conveyor-{image}"
    assert labels["org.opencontainers.image.version"] == version()
    assert len(labels["org.opencontainers.image.revision"]) == 40
    assert labels["org.opencontainers.image.source"] not in ("", "unknown")


@pytest.mark.parametrize("image", IMAGES)
def test_writable_paths_are_declared_volumes(images: dict[str, str], image: str) -> None:
    assert set(inspect(images[image])["Config"]["Volumes"]) == VOLUMES[image]


@pytest.mark.parametrize("image", IMAGES)
def test_holds_no_pip(images: dict[str, str], image: str) -> None:
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('pip') is not None)"
    result = podman("run", "--rm", "--entrypoint", "python3", images[image], "-c", probe)
    assert result.returncode == 0, result.stderr or "pip is in the image"
