"""The manifest: every member's checksum, and the sources with their secrets masked."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tarfile
from pathlib import Path
from typing import Any

import pytest

from conveyor.config import load_config
from conveyor.pipeline.backup import create_backup
from conveyor.pipeline.project import Project
from conveyor.settings import Settings

pytestmark = pytest.mark.integration

REMOTE = "s3://backup-key:hunter2@bucket/dvc"


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """A backup of a small project: a store with one experiment, its artifacts, a config."""
    root = tmp_path / "project"
    artifacts = root / ".conveyor" / "mlartifacts" / "churn"
    artifacts.mkdir(parents=True)
    (artifacts / "model.bin").write_bytes(b"\x00model" * 100)
    with sqlite3.connect(root / ".conveyor" / "mlflow.db") as db:
        db.execute("CREATE TABLE experiments (artifact_location TEXT)")
        db.execute("INSERT INTO experiments VALUES (?)", (artifacts.as_uri(),))
    config = root / "conveyor.yaml"
    config.write_text("name: churn\ndata:\n  source: data.csv\n  target: y\n", encoding="utf-8")
    project = Project.open(
        load_config(config), config_dir=root, settings=Settings(dvc_remote=REMOTE)
    )
    target = tmp_path / "backup.tar"
    create_backup(project, config_path=config, target=str(target))
    return target


def _read(archive: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    with tarfile.open(archive) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    return json.loads(files.pop("manifest.json")), files


def test_manifest_holds_the_sha256_and_size_of_every_member(archive: Path) -> None:
    manifest, files = _read(archive)
    assert "project/.conveyor/mlartifacts/churn/model.bin" in files
    assert manifest["members"] == {
        name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        for name, data in files.items()
    }


def test_manifest_names_the_sources_with_secrets_masked(archive: Path) -> None:
    manifest, _ = _read(archive)
    assert manifest["sources"]["dvc_remote"] == "s3://backup-key:***@bucket/dvc"
    assert manifest["format_version"] == 1
    assert "hunter2" not in archive.read_bytes().decode("latin-1")
