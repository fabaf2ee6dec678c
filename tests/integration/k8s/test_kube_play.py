"""The rendered serving Deployment run by ``podman kube play``: the pod starts from the
locally built image (a baked model, so no registry is needed), becomes ready, answers a
prediction, and really runs as its non-root user on a read-only root filesystem with no
capabilities.

Changes to the rendered Deployment, all for running on one machine without a cluster:
the image is a baked one, the registry variables go (the baked model needs none), the
referenced Secrets are played beside it with throwaway values, and the HTTP port is
published on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from secrets import token_hex
from typing import Any

import httpx
import pytest
import yaml
from tests.integration.faults.conftest import free_port
from tests.integration.images.conftest import (
    Container,
    image_build,
    images,
    podman,
    signed_store,
    wait_answering,
)
from tests.integration.k8s.conftest import find
from tests.integration.serving.conftest import FEATURES, make_table

__all__ = ["images"]

pytestmark = pytest.mark.integration

MODEL = "kube-play-test"
TAG = "localhost/conveyor-kube-play-test:1"
REGISTRY_ENV = {
    "CONVEYOR_SERVE_MODEL_URI",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
}


@contextmanager
def podman_secret(name: str, folder: Path, **data: str) -> Iterator[None]:
    """A podman secret in the form ``kube play`` reads for ``secretKeyRef`` (podman 4.3:
    a JSON map of key to base64 value), removed afterwards."""
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    path = folder / f"{name}.json"
    path.write_text(json.dumps(encoded), encoding="utf-8")
    podman("secret", "rm", name)
    created = podman("secret", "create", name, str(path))
    assert created.returncode == 0, created.stderr
    path.unlink()
    try:
        yield
    finally:
        podman("secret", "rm", name)


def local_deployment(deployment: dict[str, Any], image: str, port: int) -> dict[str, Any]:
    """The rendered Deployment, changed only as the module docstring says."""
    local = json.loads(json.dumps(deployment))
    local["spec"]["replicas"] = 1  # every replica would bind the same host port
    (container,) = local["spec"]["template"]["spec"]["containers"]
    container["image"] = image
    container["env"] = [v for v in container["env"] if v["name"] not in REGISTRY_ENV]
    (http,) = container["ports"]
    http.update(hostPort=port, hostIP="127.0.0.1")
    return local


@pytest.fixture(scope="module")
def baked(images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A registered champion baked into an image on the serving image: its pipeline and
    the store's signing key (the pod verifies the baked version with it)."""
    folder = tmp_path_factory.mktemp("kube-play-store")
    uri, pipeline = signed_store(folder, MODEL, seed=81)
    built = image_build(
        f"{MODEL}@champion", "--tag", TAG, "--tracking-uri", uri,
        "--base-image", images["serve"], cwd=folder,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    try:
        yield pipeline, (folder / "signing.key").read_text(encoding="utf-8").strip()
    finally:
        podman("rmi", "--force", TAG)


def pod_container(pod: str) -> str:
    listed = podman("pod", "inspect", pod)
    assert listed.returncode == 0, listed.stderr
    info = json.loads(listed.stdout)
    info = info[0] if isinstance(info, list) else info
    names = [c["Name"] for c in info["Containers"] if not c["Name"].endswith("-infra")]
    assert len(names) == 1, names
    return str(names[0])


@pytest.fixture(scope="module")
def played(
    baked: Any,
    rendered: dict[str, list[dict[str, Any]]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str]]:
    """``podman kube play`` of the base overlay's serving Deployment: (container, URL)."""
    port = free_port()
    deployment = local_deployment(find(rendered["base"], "Deployment", "conveyor-serve"), TAG, port)
    deployment["metadata"].pop("namespace", None)
    deployment["metadata"]["name"] = name = f"conveyor-serve-{token_hex(4)}"
    folder = tmp_path_factory.mktemp("kube-play")
    manifest = folder / "serve.yaml"
    manifest.write_text(yaml.safe_dump(deployment), encoding="utf-8")
    stack = ExitStack()
    stack.enter_context(podman_secret("conveyor-signing", folder, key=baked[1]))
    stack.enter_context(podman_secret("conveyor-serve-tokens", folder, feedback=token_hex(16)))
    stack.callback(podman, "kube", "down", str(manifest), timeout=120)
    started = podman("kube", "play", "--replace", str(manifest), timeout=300)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        container = pod_container(f"{name}-pod-0")
        url = f"http://127.0.0.1:{port}"
        wait_answering(Container(container, url), "/readyz")
        yield container, url
    finally:
        stack.close()


def test_the_pod_becomes_ready(played: tuple[str, str]) -> None:
    _, url = played
    assert httpx.get(f"{url}/readyz", timeout=5.0).json()["status"] == "ready"


def test_the_pod_answers_a_prediction_like_the_registered_pipeline(
    played: tuple[str, str], baked: Any
) -> None:
    _, url = played
    rows = make_table(n=8, seed=82)[FEATURES]
    body = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
    answer = httpx.post(f"{url}/invocations", json=body, timeout=30.0)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == baked[0].predict(rows).tolist()


def test_the_server_runs_as_the_non_root_user(played: tuple[str, str]) -> None:
    container, _ = played
    result = podman("exec", container, "python3", "-c", "import os; print(os.getuid())")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "10001"


def test_the_root_filesystem_is_read_only(played: tuple[str, str]) -> None:
    container, _ = played
    script = "open('/opt/conveyor/probe-write', 'w')"
    result = podman("exec", container, "python3", "-c", script)
    assert result.returncode == 1, result.stderr  # python's exit status for an uncaught OSError
    assert "Read-only file system" in result.stderr


def test_the_declared_volumes_stay_writable(played: tuple[str, str]) -> None:
    container, _ = played
    script = "open('/tmp/probe-write', 'w').write('ok'); open('/var/lib/conveyor/x', 'w')"
    result = podman("exec", container, "python3", "-c", script)
    assert result.returncode == 0, result.stderr


def test_the_server_holds_no_capabilities(played: tuple[str, str]) -> None:
    container, _ = played
    status = podman("exec", container, "cat", "/proc/1/status")
    assert status.returncode == 0, status.stderr
    effective = [
        line.split()[1] for line in status.stdout.splitlines() if line.startswith("CapEff")
    ]
    assert effective == ["0000000000000000"]
