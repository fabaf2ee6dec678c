"""Conveyor's images, built once per session from this checkout with podman, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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


def build(image: str) -> str:
    """`deploy/docker/build-images.sh` for one image; returns its tag."""
    result = subprocess.run(
        ["bash", str(ROOT / "deploy/docker/build-images.sh"), sys.executable, image],
        cwd=ROOT,
        env=podman_env(),
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return f"localhost/conveyor-{image}:{version()}"


def inspect(tag: str) -> dict[str, Any]:
    result = podman("image", "inspect", tag)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout)[0])


@pytest.fixture(scope="session")
def serve_image() -> str:
    return build("serve")
