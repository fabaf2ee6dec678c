"""Project folders and an S3 server (moto's real server) for the DVC integration tests."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _no_dvc_analytics() -> None:
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def write_dataset(project: Path, content: bytes) -> Path:
    """A dataset file where the pipeline keeps it: <project>/.conveyor/data/."""
    path = project / ".conveyor" / "data" / "churn.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.fixture
def git_project(tmp_path: Path) -> Path:
    """A git work tree with a local identity, as a user's project would be."""
    project = tmp_path / "gitproj"
    project.mkdir()
    for args in (["init", "-q"], ["config", "user.email", "ci@example.com"],
                 ["config", "user.name", "CI"]):  # fmt: skip
        subprocess.run(["git", *args], cwd=project, check=True)
    return project


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A bucket on moto's S3 server on loopback; yields its s3:// URL prefix."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="conveyor-data")
    try:
        yield "s3://conveyor-data/dvc"
    finally:
        server.stop()
