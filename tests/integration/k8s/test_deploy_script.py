"""deploy/k8s/deploy.py render: the overlay with the images the workflow pushed, checked.

Applying, rollout status and rollback need a cluster and are not run here; smoke and
follow run against real replicas in tests/integration/rollout."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import yaml
from tests.integration.k8s.conftest import K8S, containers

pytestmark = pytest.mark.integration

REGISTRY = "ghcr.io/conveyor-mlops"
DIGESTS = {
    "conveyor-serve": "sha256:" + "a" * 64,
    "conveyor-pipeline": "sha256:" + "b" * 64,
    "conveyor-mlflow": "sha256:" + "c" * 64,
}


def deploy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(K8S / "deploy.py"), *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def images(*references: str) -> list[str]:
    return [arg for ref in references for arg in ("--image", ref)]


def every_digest() -> list[str]:
    return images(*(f"{REGISTRY}/{name}@{digest}" for name, digest in DIGESTS.items()))


def render(*args: str) -> list[dict[str, Any]]:
    result = deploy("render", *args)
    assert result.returncode == 0, result.stderr
    return [o for o in yaml.safe_load_all(result.stdout) if o]


def test_production_runs_each_image_at_the_digest_given() -> None:
    objects = render("--overlay", "production", *every_digest())
    used = {c["image"] for _, c in containers(objects)}
    assert used == {f"{REGISTRY}/{name}@{digest}" for name, digest in DIGESTS.items()}


def test_staging_takes_a_digest_over_its_tag() -> None:
    serve = f"{REGISTRY}/conveyor-serve@{DIGESTS['conveyor-serve']}"
    objects = render("--overlay", "staging", *images(serve))
    assert serve in {c["image"] for _, c in containers(objects)}


def test_production_without_a_digest_is_refused_naming_the_images() -> None:
    result = deploy("render", "--overlay", "production",
                    *images(f"{REGISTRY}/conveyor-serve@{DIGESTS['conveyor-serve']}"))  # fmt: skip
    assert result.returncode == 1
    assert "no digest given for" in result.stderr
    assert f"{REGISTRY}/conveyor-mlflow" in result.stderr
    assert f"{REGISTRY}/conveyor-pipeline" in result.stderr


def test_an_image_the_overlay_does_not_use_is_refused() -> None:
    result = deploy(
        "render", "--overlay", "staging", *images(f"{REGISTRY}/other@{DIGESTS['conveyor-serve']}")
    )
    assert (result.returncode, result.stderr.strip()) == (
        1,
        f"deploy: --image {REGISTRY}/other: the overlay has no such image",
    )


def test_a_malformed_reference_is_refused() -> None:
    result = deploy(
        "render", "--overlay", "staging", *images(f"{REGISTRY}/conveyor-serve@sha256:abc")
    )
    assert result.returncode == 1
    assert "expected NAME@sha256:<64 hex> or NAME:TAG" in result.stderr
