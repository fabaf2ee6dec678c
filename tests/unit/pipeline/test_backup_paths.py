"""Naming archives, checking member names and moving old paths: the pure parts of backup."""

from __future__ import annotations

import pytest

from conveyor.errors import BackupError
from conveyor.pipeline.archive import archive_suffix, is_remote, safe_member_name
from conveyor.pipeline.backup import _archive_target
from conveyor.pipeline.reproduce import MetricComparison
from conveyor.pipeline.restore import _moved
from conveyor.registry.snapshot import Relocation, local_path, store_kind


@pytest.mark.parametrize(
    ("target", "suffix"),
    [("b.tar.gz", ".tar.gz"), ("s3://x/b.TGZ", ".tgz"), ("b.tar", ".tar"), ("backups/", None)],
)
def test_archive_suffix_tells_a_file_from_a_folder(target: str, suffix: str | None) -> None:
    assert archive_suffix(target) == suffix


def test_a_folder_target_gets_a_timestamped_archive_name() -> None:
    named = _archive_target("s3://ops/churn/", "churn-demo")
    assert named.startswith("s3://ops/churn/conveyor-backup-churn-demo-")
    assert named.endswith("Z.tar.gz")


def test_only_urls_are_remote() -> None:
    assert is_remote("s3://ops/b.tar.gz")
    assert not is_remote("/backups/b.tar.gz")
    assert not is_remote("file:///backups/b.tar.gz")


@pytest.mark.parametrize("name", ["/etc/passwd", "project/../../x", "..", "a\\b", ""])
def test_member_names_that_leave_the_folder_are_unsafe(name: str) -> None:
    assert not safe_member_name(name)


def test_member_names_inside_the_folder_are_safe() -> None:
    assert safe_member_name("project/.conveyor/runs/1/record.json")


def test_relocation_moves_both_forms_of_a_location() -> None:
    move = Relocation(old="/old/p/.conveyor/mlartifacts", new="/new dir/.conveyor/mlartifacts")
    assert move.prefixes() == [
        ("file:///old/p/.conveyor/mlartifacts", "file:///new%20dir/.conveyor/mlartifacts"),
        ("/old/p/.conveyor/mlartifacts", "/new dir/.conveyor/mlartifacts"),
    ]


def test_moved_rewrites_a_path_below_the_old_root_only() -> None:
    pairs = [("/old/p", "/new/q")]
    assert _moved("/old/p/.conveyor/runs/1", pairs) == "/new/q/.conveyor/runs/1"
    assert _moved("/old/p", pairs) == "/new/q"
    assert _moved("/old/project-2/x", pairs) == "/old/project-2/x"


def test_local_path_reads_file_uris_and_absolute_paths() -> None:
    assert str(local_path("file:///a%20b/c")) == "/a b/c"
    assert str(local_path("/a/b")) == "/a/b"
    assert local_path("s3://bucket/a") is None
    assert local_path("mlflow-artifacts:/1/2") is None


def test_a_tracking_server_cannot_be_backed_up_here() -> None:
    with pytest.raises(BackupError, match="tracking server"):
        store_kind("http://mlflow:5000")


def test_store_kind_of_sqlite_and_postgresql() -> None:
    assert store_kind("sqlite:////p/.conveyor/mlflow.db") == "sqlite"
    assert store_kind("postgresql+psycopg://u:p@db/mlflow") == "postgresql"


def test_a_metric_matches_within_the_tolerance_only() -> None:
    assert MetricComparison("roc_auc", 0.85, 0.85 + 1e-9, 1e-6).matches
    assert not MetricComparison("roc_auc", 0.85, 0.86, 1e-6).matches
    assert not MetricComparison("roc_auc", 0.85, None, 1e-6).matches
    assert not MetricComparison("roc_auc", float("nan"), 0.85, 1e-6).matches
