"""A team shares datasets through a DVC remote on S3: one member runs the pipeline, another
clones the project and pulls a dataset version back, against a real S3 server (SeaweedFS)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.s3_server import S3Server

pytestmark = pytest.mark.e2e

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))
# What the project's repository keeps: not the local store, runs and caches, but the
# records that name each dataset version (DVC ignores the datasets themselves).
GITIGNORE = ".conveyor/*\n!.conveyor/data-versions/\n"


@dataclass(frozen=True)
class Shared:
    """The project pushed by its first run, and where its remote lives."""

    origin: Path
    remote: str
    md5: str
    dataset: str


def _run(args: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done


def _git(*args: str, cwd: Path, env: dict[str, str]) -> None:
    identity = ["-c", "user.email=ci@example.com", "-c", "user.name=CI"]
    _run(["git", *identity, *args], cwd=cwd, env=env)


@pytest.fixture(scope="module")
def user_env(s3_server: S3Server) -> dict[str, str]:
    """A user's environment: the S3 endpoint and key pair, no Conveyor or MLflow settings."""
    own = ("MLFLOW_", "CONVEYOR_")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    return {**s3_server.child_env(clean), "COLUMNS": "200"}


@pytest.fixture(scope="module")
def shared(
    tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server, user_env: dict[str, str]
) -> Shared:
    origin = tmp_path_factory.mktemp("team") / "churn"
    remote = f"s3://{s3_server.create_bucket('datasets')}/churn"
    _run([CONVEYOR, "demo", "--dir", str(origin), "--rows", "600"], cwd=origin.parent, env=user_env)
    with (origin / "conveyor.yaml").open("a", encoding="utf-8") as config:
        config.write(f"versioning:\n  remote: {remote}\n")
    (origin / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    _git("init", "-q", cwd=origin, env=user_env)
    _run([CONVEYOR, "run", "-c", "conveyor.yaml"], cwd=origin, env=user_env)
    _git("add", "-A", cwd=origin, env=user_env)
    _git("commit", "-q", "-m", "churn model, first run", cwd=origin, env=user_env)
    (record,) = (origin / ".conveyor" / "data-versions").glob("*.json")
    version = json.loads(record.read_text(encoding="utf-8"))
    return Shared(origin, remote, version["md5"], version["path"])


def test_the_run_pushes_the_dataset_to_the_s3_remote(shared: Shared, s3_server: S3Server) -> None:
    bucket, prefix = shared.remote.removeprefix("s3://").split("/", 1)
    key = f"{prefix}/files/md5/{shared.md5[:2]}/{shared.md5[2:]}"
    body = s3_server.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.md5(body).hexdigest() == shared.md5


def test_a_fresh_clone_pulls_the_dataset_version_back_from_s3(
    shared: Shared, user_env: dict[str, str]
) -> None:
    clone = shared.origin.parent / "teammate"
    _git("clone", "-q", str(shared.origin), str(clone), cwd=shared.origin.parent, env=user_env)
    pulled = clone / shared.dataset
    assert not pulled.exists()  # DVC keeps the data out of git: it can only come from S3
    done = _run([CONVEYOR, "data", "pull", shared.md5], cwd=clone, env=user_env)
    assert f"restored {shared.md5}" in done.stdout
    assert hashlib.md5(pulled.read_bytes()).hexdigest() == shared.md5
