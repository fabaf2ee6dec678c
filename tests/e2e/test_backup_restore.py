"""Disaster recovery as a user runs it: back up a demo project, lose it, restore it elsewhere.

One demo project is trained twice (two versions), scored, backed up and then deleted;
each test checks one thing the restored copy must give back.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from tests.integration.serving.conftest import free_port, wait_ready
from tests.s3_server import S3Server

from conveyor.registry.snapshot import LOCATION_COLUMNS
from conveyor.registry.store import ModelRegistry

pytestmark = pytest.mark.e2e

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))
NAME = "churn-demo"


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    own = ("MLFLOW_", "CONVEYOR_", "AWS_")  # the test's settings only
    clean = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    return subprocess.run(
        [CONVEYOR, *args],
        cwd=cwd,
        env={**clean, "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@dataclass(frozen=True)
class Before:
    """What the original project held, captured before it was deleted."""

    root: Path
    work: Path
    archive: Path
    versions: dict[str, dict[str, Any]]
    aliases: dict[str, str]
    run_records: dict[str, dict[str, Any]]
    dataset_md5s: list[str]
    rows: Path
    predictions: pd.DataFrame


def _store_state(config: Path) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Lineage of every version (run, params, metrics, tags, data, files) and the aliases."""
    registry = ModelRegistry(f"sqlite:///{config.parent / '.conveyor' / 'mlflow.db'}")
    versions = {v.version: registry.lineage(NAME, v.version) for v in registry.list_versions(NAME)}
    aliases = {a: v for v, info in versions.items() for a in info["version"]["aliases"]}
    return versions, aliases


def _run_records(root: Path, *, moved_from: Path | None = None) -> dict[str, dict[str, Any]]:
    """Each pipeline run's status and its steps' statuses and summaries (paths in them
    read as if under ``moved_from``, the project's old folder)."""
    records = {}
    for path in sorted((root / ".conveyor" / "runs").glob("*/record.json")):
        text = path.read_text(encoding="utf-8")
        if moved_from is not None:
            assert str(moved_from) not in text, "a path of the old folder is left"
            text = text.replace(str(root), str(moved_from))
        record = json.loads(text)
        steps = {k: (s["status"], s.get("summary")) for k, s in record["steps"].items()}
        records[record["run_id"]] = {"status": record["status"], "steps": steps}
    return records


@pytest.fixture(scope="module")
def before(tmp_path_factory: pytest.TempPathFactory) -> Before:
    work = tmp_path_factory.mktemp("recovery")
    root = work / "demo"
    config = root / "conveyor.yaml"
    ok(run_cli("demo", "--dir", str(root), "--rows", "1200", cwd=work))
    ok(run_cli("run", "-c", str(config), cwd=work))
    ok(run_cli("demo", "--dir", str(root), "--rows", "1400", "--seed", "7", cwd=work))
    ok(run_cli("run", "-c", str(config), cwd=work))
    rows = work / "rows.csv"
    shutil.copyfile(root / "data" / "churn.csv", rows)
    scored = work / "before.parquet"
    ok(
        run_cli(
            "predict",
            "-i",
            str(rows),
            "-o",
            str(scored),
            "--probabilities",
            "-c",
            str(config),
            cwd=work,
        )
    )
    ok(run_cli("backup", "-c", str(config), "--to", str(work / "backups"), cwd=work))
    (archive,) = (work / "backups").glob("*.tar.gz")
    versions, aliases = _store_state(config)
    state = Before(
        root=root,
        work=work,
        archive=archive,
        versions=versions,
        aliases=aliases,
        run_records=_run_records(root),
        dataset_md5s=sorted(p.stem for p in (root / ".conveyor" / "data-versions").glob("*.json")),
        rows=rows,
        predictions=pd.read_parquet(scored),
    )
    shutil.rmtree(root)  # the disaster
    return state


@pytest.fixture(scope="module")
def restored(before: Before) -> Path:
    into = before.work / "restored"
    done = ok(
        run_cli("restore", "--from", str(before.archive), "--into", str(into), cwd=before.work)
    )
    assert "2 versions" in done.stdout
    return into


def test_restore_brings_back_versions_aliases_tags_and_lineage(
    before: Before, restored: Path
) -> None:
    versions, aliases = _store_state(restored / "conveyor.yaml")
    assert len(versions) == 2
    assert aliases == before.aliases
    assert versions == before.versions


def test_restore_brings_back_the_run_history(before: Before, restored: Path) -> None:
    assert len(before.run_records) == 2
    assert _run_records(restored, moved_from=before.root) == before.run_records


def test_restored_store_locates_artifacts_in_the_new_folder(before: Before, restored: Path) -> None:
    with sqlite3.connect(restored / ".conveyor" / "mlflow.db") as db:
        located = [
            str(value)
            for table, column in LOCATION_COLUMNS
            for (value,) in db.execute(f"SELECT {column} FROM {table}")
        ]
    new_root = (restored / ".conveyor" / "mlartifacts").as_uri()
    moved = [v for v in located if v.startswith(new_root + "/")]
    assert len(moved) == 1 + 2 * 3, located  # the experiment; each version: run, model, files
    old = (str(before.root) + "/", before.root.as_uri() + "/")
    assert [v for v in located if v.startswith(old)] == []


def test_only_lineage_history_still_names_the_old_folder(before: Before, restored: Path) -> None:
    """Every other column that names the old folder would be a location left behind."""
    found = set()
    with sqlite3.connect(restored / ".conveyor" / "mlflow.db") as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for column in [row[1] for row in db.execute(f"PRAGMA table_info('{table}')")]:
                query = f"SELECT count(*) FROM '{table}' WHERE instr(CAST(\"{column}\" AS TEXT), ?)"
                if db.execute(query, (str(before.root),)).fetchone()[0]:
                    found.add((table, column))
    # the DVC remote tag of runs and versions, and where each dataset was read from
    assert found == {
        ("tags", "value"),
        ("model_version_tags", "value"),
        ("datasets", "dataset_source"),
    }


def test_restored_champion_predicts_the_same(before: Before, restored: Path) -> None:
    scored = before.work / "after.parquet"
    config = str(restored / "conveyor.yaml")
    ok(
        run_cli(
            "predict",
            "-i",
            str(before.rows),
            "-o",
            str(scored),
            "--probabilities",
            "-c",
            config,
            cwd=before.work,
        )
    )
    pd.testing.assert_frame_equal(pd.read_parquet(scored), before.predictions)


def test_serve_in_the_restored_folder_answers_as_before(before: Before, restored: Path) -> None:
    port = free_port()
    log = before.work / "serve.log"
    argv = [CONVEYOR, "serve", "--port", str(port), "--poll-interval", "0", "--drain-seconds", "0"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CONVEYOR_"))}
    with log.open("wb") as sink:
        server = subprocess.Popen(argv, cwd=restored, env=env, stdout=sink, stderr=sink)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(server, url, log)  # type: ignore[arg-type]
        rows = pd.read_csv(before.rows, nrows=20).drop(columns=["churned"])
        body = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
        answer = httpx.post(f"{url}/invocations", json=body, timeout=60)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Model-Version"] == before.aliases["champion"]
    assert answer.json()["predictions"] == before.predictions["prediction"].head(20).tolist()


def test_every_dataset_version_pulls_back_with_its_md5(before: Before, restored: Path) -> None:
    assert len(before.dataset_md5s) == 2
    config = str(restored / "conveyor.yaml")
    for md5 in before.dataset_md5s:
        dest = before.work / f"pulled-{md5}.parquet"
        ok(run_cli("data", "pull", md5, "-c", config, "--dest", str(dest), cwd=before.work))
        assert hashlib.md5(dest.read_bytes()).hexdigest() == md5


def test_reproduce_rebuilds_a_restored_version_with_the_same_metrics(
    before: Before, restored: Path
) -> None:
    done = run_cli("reproduce", NAME, "2", "-c", str(restored / "conveyor.yaml"), cwd=before.work)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reproduced: every metric within" in done.stdout
    assert "roc_auc" in done.stdout


def test_reproduce_moves_no_alias_and_registers_nothing(before: Before, restored: Path) -> None:
    versions, aliases = _store_state(restored / "conveyor.yaml")
    assert sorted(versions) == sorted(before.versions)
    assert aliases == before.aliases


def test_restore_refuses_a_folder_that_is_not_empty(before: Before) -> None:
    into = before.work / "occupied"
    into.mkdir()
    (into / "keep.txt").write_text("mine", encoding="utf-8")
    done = run_cli("restore", "--from", str(before.archive), "--into", str(into), cwd=before.work)
    assert done.returncode == 2
    assert "not empty" in done.stderr
    assert sorted(p.name for p in into.iterdir()) == ["keep.txt"]


def _rewrite_member(archive: Path, out: Path, name: str, change: Any) -> None:
    """A copy of ``archive`` with one member's bytes changed (the manifest left as it is)."""
    with tarfile.open(archive, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        for info in src.getmembers():
            data = src.extractfile(info).read() if info.isfile() else b""  # type: ignore[union-attr]
            if info.name == name:
                data = change(data)
                info.size = len(data)
            dst.addfile(info, io.BytesIO(data))


def test_restore_refuses_a_tampered_archive_and_writes_nothing(before: Before) -> None:
    tampered = before.work / "tampered.tar.gz"
    member = "project/conveyor.yaml"
    _rewrite_member(before.archive, tampered, member, lambda b: b.replace(b"0.70", b"0.10"))
    into = before.work / "from-tampered"
    done = run_cli("restore", "--from", str(tampered), "--into", str(into), cwd=before.work)
    assert done.returncode == 1
    assert f"member {member} does not match its checksum" in done.stderr
    assert not into.exists()


def test_restore_refuses_a_truncated_archive_and_writes_nothing(before: Before) -> None:
    truncated = before.work / "truncated.tar.gz"
    data = before.archive.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    into = before.work / "from-truncated"
    done = run_cli("restore", "--from", str(truncated), "--into", str(into), cwd=before.work)
    assert done.returncode == 1
    assert "not a whole backup archive" in done.stderr
    assert not into.exists()


@pytest.fixture
def s3_prefix(s3_server: S3Server) -> tuple[str, dict[str, str]]:
    """A fresh bucket on the SeaweedFS S3 server; its s3:// prefix and the CLI's env."""
    bucket = s3_server.create_bucket("backups")
    return f"s3://{bucket}/conveyor", s3_server.env()


def test_backup_to_s3_restores_from_s3(
    before: Before, restored: Path, s3_prefix: tuple[str, dict[str, str]]
) -> None:
    prefix, env = s3_prefix
    target = f"{prefix}/nightly.tar.gz"
    config = str(restored / "conveyor.yaml")
    ok(run_cli("backup", "-c", config, "--to", target, cwd=before.work, env=env))
    into = before.work / "from-s3"
    ok(run_cli("restore", "--from", target, "--into", str(into), cwd=before.work, env=env))
    versions, aliases = _store_state(into / "conveyor.yaml")
    assert (versions, aliases) == _store_state(restored / "conveyor.yaml")


def test_backup_never_overwrites_an_archive(before: Before, restored: Path) -> None:
    kept = before.archive.read_bytes()
    config = str(restored / "conveyor.yaml")
    done = run_cli("backup", "-c", config, "--to", str(before.archive), cwd=before.work)
    assert done.returncode == 1
    assert "already exists" in done.stderr
    assert before.archive.read_bytes() == kept


def test_the_restored_signing_key_is_readable_by_its_owner_only(restored: Path) -> None:
    assert (restored / ".conveyor" / "signing.key").stat().st_mode & 0o777 == 0o600
