"""Project folders and a real S3 server (SeaweedFS) for the DVC integration tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from tests.s3_server import S3Server


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


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the SeaweedFS S3 server, the AWS_* variables pointing at it;
    returns the s3:// URL of a DVC remote in it."""
    s3_server.point_env(monkeypatch)
    return f"s3://{s3_server.create_bucket()}/dvc"
