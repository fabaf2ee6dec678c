"""`conveyor image build`: one registered version baked into an image that serves it with
no registry and no network at all, labelled with where the model came from."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.integration.images.conftest import (
    READY_TIMEOUT_S,
    healthcheck,
    image_build,
    inspect,
    logs,
    podman,
    podman_env,
    signed_store,
)
from tests.integration.serving.conftest import FEATURES, make_table

pytestmark = pytest.mark.integration

MODEL = "bake-test"
TAG = "localhost/conveyor-baked-test:1"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any, Path]:
    """A local store with the champion (ONNX export and profile) signed by its key file."""
    folder = tmp_path_factory.mktemp("bake-store")
    uri, pipeline = signed_store(folder, MODEL, seed=71)
    return uri, pipeline, folder


@pytest.fixture(scope="module")
def baked(serve_image: str, store: tuple[str, Any, Path]) -> Iterator[str]:
    uri, _, folder = store
    built = image_build(
        f"{MODEL}@champion", "--tag", TAG, "--tracking-uri", uri, "--base-image", serve_image,
        cwd=folder,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    try:
        yield TAG
    finally:
        podman("rmi", "--force", TAG)


@pytest.fixture(scope="module")
def offline(baked: str) -> Iterator[str]:
    """The baked image running with --network none and a read-only root: its name. It
    listens on 0.0.0.0, so POST /feedback needs its token (the server refuses otherwise)."""
    name = f"conveyor-baked-test-{time.monotonic_ns()}"
    token = f"--env=CONVEYOR_FEEDBACK_TOKEN={'f' * 32}"
    started = podman(
        "run", "--detach", "--read-only", "--network", "none", "--name", name, token, baked
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while healthcheck(name).returncode != 0:
            state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
            if state not in ("running", "created") or time.monotonic() > deadline:
                pytest.fail(f"not healthy ({state}): {logs(name)}")
            time.sleep(1.0)
        yield name
    finally:
        podman("rm", "--force", "--time", "5", name)


def test_labels_name_the_model_version_and_run(baked: str) -> None:
    labels = inspect(baked)["Config"]["Labels"]
    assert (labels["io.conveyor.model.name"], labels["io.conveyor.model.version"]) == (MODEL, "1")
    assert len(labels["io.conveyor.model.run-id"]) == 32


def test_labels_carry_the_signed_model_digest(baked: str) -> None:
    assert len(inspect(baked)["Config"]["Labels"]["io.conveyor.model.model_digest"]) == 64


def test_it_inherits_the_non_root_user(baked: str) -> None:
    assert inspect(baked)["Config"]["User"] == "10001:10001"


def test_it_is_healthy_with_no_network(offline: str) -> None:
    assert healthcheck(offline).returncode == 0


def test_it_answers_like_the_registered_pipeline_with_no_network(
    offline: str, store: tuple[str, Any, Path]
) -> None:
    _, pipeline, _ = store
    rows = make_table(n=12, seed=72)[FEATURES]
    rows.loc[rows.index % 4 == 0, "job"] = np.nan
    body = json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split", index=False))})
    script = (
        "import sys, urllib.request; r = urllib.request.Request("
        "'http://127.0.0.1:8080/invocations', data=sys.stdin.buffer.read(), "
        "headers={'content-type': 'application/json'}); "
        "print(urllib.request.urlopen(r, timeout=30).read().decode())"
    )
    answered = subprocess.run(
        ["podman", "exec", "-i", offline, "python3", "-c", script],
        input=body, env=podman_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout)["predictions"] == pipeline.predict(rows).tolist()


def test_an_unknown_alias_builds_nothing(serve_image: str, store: tuple[str, Any, Path]) -> None:
    uri, _, folder = store
    tag = "localhost/conveyor-baked-never:1"
    built = image_build(
        f"{MODEL}@nope", "--tag", tag, "--tracking-uri", uri, "--base-image", serve_image,
        cwd=folder,
    )  # fmt: skip
    assert (built.returncode, "no alias 'nope'" in built.stderr) == (1, True), built.stderr
    assert podman("image", "exists", tag).returncode == 1
