"""DatasetVersioner with real DVC: track, push to a remote, pull back, list versions."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from tests.s3_server import S3Server

from conveyor.data.versioning import DatasetVersioner, DataVersion
from conveyor.errors import RemoteUnavailableError, VersioningError

from .conftest import write_dataset

pytestmark = pytest.mark.integration

CONTENT_A = b"age,plan\n34,pro\n51,basic\n" * 200
CONTENT_B = b"age,plan\n29,team\n" * 300


def _md5(content: bytes) -> str:
    return hashlib.md5(content, usedforsecurity=False).hexdigest()


def _remote_object(remote: Path, md5: str) -> Path:
    return remote / "files" / "md5" / md5[:2] / md5[2:]


def test_track_outside_git_pushes_to_the_local_remote(tmp_path: Path) -> None:
    data = write_dataset(tmp_path, CONTENT_A)
    version = DatasetVersioner(tmp_path).track(data)
    assert version.md5 == _md5(CONTENT_A)
    assert version.path == ".conveyor/data/churn.parquet"
    assert version.size == len(CONTENT_A)
    remote = tmp_path / ".conveyor" / "dvc-remote"
    assert version.remote == str(remote)
    assert _remote_object(remote, version.md5).read_bytes() == CONTENT_A
    assert (tmp_path / ".dvc").is_dir() and not (tmp_path / ".git").exists()
    records = tmp_path / ".conveyor" / "data-versions"
    assert json.loads((records / f"{version.md5}.json").read_text()) == version.to_dict()
    assert version.md5 in (records / f"{version.md5}.dvc").read_text()


def test_retracking_the_same_content_returns_the_same_version(tmp_path: Path) -> None:
    data = write_dataset(tmp_path, CONTENT_A)
    versioner = DatasetVersioner(tmp_path)
    first = versioner.track(data)
    assert DatasetVersioner(tmp_path).track(data) == first
    assert versioner.versions() == [first]


def test_track_in_a_git_repo_uses_git_and_keeps_the_remote_url_local(git_project: Path) -> None:
    data = write_dataset(git_project, CONTENT_A)
    version = DatasetVersioner(git_project).track(data)
    assert version.md5 == _md5(CONTENT_A)
    assert (git_project / ".dvc" / ".gitignore").is_file()  # dvc init with SCM
    assert "/churn.parquet" in (data.parent / ".gitignore").read_text()
    assert "dvc-remote" not in (git_project / ".dvc" / "config").read_text()
    assert "dvc-remote" in (git_project / ".dvc" / "config.local").read_text()


def test_pull_restores_after_file_and_cache_are_deleted(git_project: Path) -> None:
    data = write_dataset(git_project, CONTENT_A)
    versioner = DatasetVersioner(git_project)
    old = versioner.track(data)
    data.write_bytes(CONTENT_B)
    new = versioner.track(data)
    assert [v.md5 for v in versioner.versions()] == [new.md5, old.md5]
    data.unlink()
    shutil.rmtree(git_project / ".dvc" / "cache")
    assert versioner.pull(old.md5) == data
    assert data.read_bytes() == CONTENT_A
    dest = git_project.parent / "elsewhere" / "b.parquet"
    assert versioner.pull(new.md5, dest=dest) == dest
    assert dest.read_bytes() == CONTENT_B


def test_pull_of_an_unknown_md5_lists_the_known_versions(tmp_path: Path) -> None:
    versioner = DatasetVersioner(tmp_path)
    known = versioner.track(write_dataset(tmp_path, CONTENT_A))
    with pytest.raises(VersioningError, match=rf"'0{{32}}'.*known versions: {known.md5}"):
        versioner.pull("0" * 32)


def test_track_refuses_a_file_outside_the_project(tmp_path: Path) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_bytes(CONTENT_A)
    project = tmp_path / "proj"
    project.mkdir()
    with pytest.raises(VersioningError, match="outside"):
        DatasetVersioner(project).track(outside)
    with pytest.raises(VersioningError, match="no such file"):
        DatasetVersioner(project).track(project / "missing.csv")


def test_data_version_round_trips() -> None:
    version = DataVersion("a" * 32, "data/x.csv", "/remote", 12, "2026-01-01T00:00:00+00:00")
    assert DataVersion.from_dict(json.loads(json.dumps(version.to_dict()))) == version


def test_s3_remote_push_and_pull(tmp_path: Path, s3_bucket: str, s3_server: S3Server) -> None:
    data = write_dataset(tmp_path, CONTENT_A)
    versioner = DatasetVersioner(tmp_path, remote=s3_bucket)
    version = versioner.track(data)
    assert version.remote == s3_bucket
    bucket = s3_bucket.removeprefix("s3://").split("/")[0]
    key = f"dvc/files/md5/{version.md5[:2]}/{version.md5[2:]}"
    body = s3_server.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == CONTENT_A
    data.unlink()
    shutil.rmtree(tmp_path / ".dvc" / "cache")
    assert versioner.pull(version.md5).read_bytes() == CONTENT_A


@pytest.mark.parametrize("ignored", ["project", "dataset"])
def test_git_ignored_project_or_dataset_uses_dvc_without_git(
    git_project: Path, ignored: str
) -> None:
    project = git_project / "scratch" / "demo"
    project.mkdir(parents=True)
    pattern = "scratch/\n" if ignored == "project" else "datasets/\n"
    (git_project / ".gitignore").write_text(pattern)
    data = project / "datasets" / "demo.parquet"
    data.parent.mkdir()
    data.write_bytes(b"PAR1 not really parquet, but DVC only hashes bytes PAR1")
    version = DatasetVersioner(project).track(data)
    assert version.md5 == hashlib.md5(data.read_bytes()).hexdigest()
    assert (project / ".dvc").is_dir()
    assert "no_scm = true" in (project / ".dvc" / "config").read_text().replace("True", "true")


def test_an_unreachable_s3_remote_is_a_retryable_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for key, value in {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    dataset = write_dataset(tmp_path, b"a,b\n1,2\n")
    versioner = DatasetVersioner(tmp_path, remote="s3://conveyor-data/dvc")
    with pytest.raises(RemoteUnavailableError, match="did not answer") as err:
        versioner.track(dataset)
    assert err.value.exit_code == 75  # Airflow retries it
    assert isinstance(err.value, VersioningError)
    assert versioner.versions() == []  # nothing recorded


def test_a_wrong_secret_on_push_names_the_remote_and_the_credentials(
    tmp_path: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    versioner = DatasetVersioner(tmp_path, remote=s3_bucket)
    with pytest.raises(VersioningError, match="refused access") as err:
        versioner.track(write_dataset(tmp_path, CONTENT_A))
    assert s3_bucket in str(err.value)
    assert "AWS_SECRET_ACCESS_KEY" in str(err.value)
    assert err.value.exit_code == 1  # a retry cannot cure it
    assert versioner.versions() == []


def test_a_wrong_secret_on_pull_names_the_remote_and_the_credentials(
    tmp_path: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    versioner = DatasetVersioner(tmp_path, remote=s3_bucket)
    version = versioner.track(write_dataset(tmp_path, CONTENT_A))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(VersioningError, match="refused access") as err:
        DatasetVersioner(tmp_path, remote=s3_bucket).pull(version.md5, dest=tmp_path / "b.csv")
    assert "AWS_SECRET_ACCESS_KEY" in str(err.value)
    assert not (tmp_path / "b.csv").exists()
