"""Conveyor's images, built once per test session from this checkout with podman, offline.

Test files run on several xdist workers; the first to need the images builds all three
under a file lock and records the session's id, so the others find them built.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.data_sources.conftest import postgres
from tests.integration.faults.conftest import CONVEYOR, clean_env
from tests.integration.serving.conftest import make_table, register_conveyor_model

from conveyor.registry.store import ModelRegistry

__all__ = ["postgres"]

ROOT = Path(__file__).resolve().parents[3]
CONTAINERS_CONF = ROOT / "deploy" / "podman" / "containers.conf"


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args],
        env=podman_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def version() -> str:
    from conveyor import __version__

    return __version__


IMAGES = ("serve", "pipeline", "mlflow", "airflow")
BUILT = ROOT / "build" / "images.session"


def tag(image: str) -> str:
    return f"localhost/conveyor-{image}:{version()}"


def build_all() -> None:
    """`deploy/docker/build-images.sh` for every image, once per test session."""
    session = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid-{os.getpid()}"
    BUILT.parent.mkdir(exist_ok=True)
    with (ROOT / "build" / "images.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if BUILT.exists() and BUILT.read_text() == session:
            return
        result = subprocess.run(
            ["bash", str(ROOT / "deploy/docker/build-images.sh"), sys.executable, *IMAGES],
            cwd=ROOT,
            env=podman_env(),
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        BUILT.write_text(session)


def signed_store(folder: Path, model: str, seed: int) -> tuple[str, Any]:
    """An embedded store in ``folder`` whose champion ``model`` (ONNX export and profile)
    is signed by the store's key file (``folder/signing.key``): its URI and pipeline."""
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        for name in ("CONVEYOR_SIGNING_KEY", "MLFLOW_TRACKING_URI"):
            patch.delenv(name, raising=False)
        pipeline, _ = register_conveyor_model(
            ModelRegistry(uri), make_table(n=300, seed=seed), name=model, key="k1",
            onnx=True, profile=True,
        )  # fmt: skip
    return uri, pipeline


def image_build(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``conveyor image build ARGS`` in ``cwd``, with a clean environment."""
    env = {**clean_env(), "CONTAINERS_CONF": str(CONTAINERS_CONF)}
    return subprocess.run(
        [CONVEYOR, "image", "build", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


def inspect(tag: str) -> dict[str, Any]:
    result = podman("image", "inspect", tag)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout)[0])


READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Container:
    """A running container (host network) and where it answers."""

    name: str
    url: str


def wait_answering(container: Container, path: str) -> None:
    """Poll ``path`` until it answers 200; fail with the container's log if it stops."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{container.url}{path}", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        state = podman("inspect", "--format", "{{.State.Status}}", container.name).stdout.strip()
        if state not in ("running", "created"):
            pytest.fail(f"container {state}: {logs(container.name)}")
        time.sleep(0.5)
    pytest.fail(f"{path} not answering in {READY_TIMEOUT_S} s: {logs(container.name)}")


def logs(name: str) -> str:
    result = podman("logs", name)
    return (result.stdout + result.stderr)[-3000:]


def healthcheck(container: str) -> subprocess.CompletedProcess[str]:
    """Run the image's HEALTHCHECK in a running container once (no systemd timers here)."""
    return podman("healthcheck", "run", container, timeout=60)


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """Every image built from this checkout: name -> tag."""
    build_all()
    return {image: tag(image) for image in IMAGES}


@pytest.fixture(scope="session")
def serve_image(images: dict[str, str]) -> str:
    return images["serve"]


@pytest.fixture(scope="session")
def pipeline_image(images: dict[str, str]) -> str:
    return images["pipeline"]


@pytest.fixture(scope="session")
def mlflow_image(images: dict[str, str]) -> str:
    return images["mlflow"]
