"""Ctrl-C or a crash mid-run: no partial registration, and the next run resumes cleanly."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.e2e

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))


def store_query(project: Path, sql: str) -> list[tuple[object, ...]]:
    """Rows of a query on the project's embedded MLflow store ([] before it has tables)."""
    store = project / ".conveyor" / "mlflow.db"
    if not store.is_file():
        return []
    # Read-write: after a SIGKILL, SQLite rolls back the writer's unfinished transaction.
    with contextlib.closing(sqlite3.connect(f"file:{store}?mode=rw", uri=True, timeout=30)) as db:
        try:
            return db.execute(sql).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # the store is not initialised yet
                return []
            raise


def wait_for_mlflow_run(project: Path, timeout: float = 300) -> None:
    """Block until the register step created its MLflow run: it is logging into it now
    (params, artifacts, the model, the profile, the report), the version comes after."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if store_query(project, "SELECT run_uuid FROM runs"):
            return
        time.sleep(0.05)
    raise AssertionError("the register step never created its MLflow run")


def wait_for_step(project: Path, step: str, timeout: float = 120) -> None:
    """Block until some run's record shows `step` running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in (project / ".conveyor" / "runs").glob("*/record.json"):
            try:
                steps = json.loads(record.read_text())["steps"]
            except (json.JSONDecodeError, KeyError):
                continue
            if steps.get(step, {}).get("status") == "running":
                return
        time.sleep(0.05)
    raise AssertionError(f"step {step} never started")


# SIGINT: the CLI maps KeyboardInterrupt to exit 130 (cli._guarded) and the MLflow run ends
# KILLED (registry.tracking); SIGKILL: no handler runs, the run stays RUNNING.
@pytest.mark.parametrize(
    ("sig", "code", "status", "mlflow_status"),
    [
        (signal.SIGINT, 130, "interrupted", "KILLED"),
        (signal.SIGKILL, -signal.SIGKILL, "running", "RUNNING"),
    ],
    ids=["SIGINT", "SIGKILL"],
)
def test_stop_during_register_then_resume(
    cli: Cli, tmp_path: Path, sig: signal.Signals, code: int, status: str, mlflow_status: str
) -> None:
    project = tmp_path / "demo"
    assert cli("demo", "--dir", str(project), "--rows", "1500").returncode == 0
    config = str(project / "conveyor.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CONVEYOR_"))}
    proc = subprocess.Popen(
        [CONVEYOR, "run", "-c", config],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_step(project, "register")
    wait_for_mlflow_run(project)  # inside MLflow's logging work, before any version
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    records = [json.loads(r.read_text()) for r in project.glob(".conveyor/runs/*/record.json")]
    assert [r["status"] for r in records] == [status]
    # Stopped inside MLflow's logging: its run was never finished, and no version exists.
    assert store_query(project, "SELECT status FROM runs") == [(mlflow_status,)]
    assert store_query(project, "SELECT version FROM model_versions") == []

    resumed = cli("run", "-c", config)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    for step in ("ingest", "validate", "version", "split", "train", "evaluate"):
        assert f"{step}" in resumed.stdout
    assert resumed.stdout.count("cached") >= 6
    assert "churn-demo v1 -> champion" in resumed.stdout
    lineage_v2 = cli("lineage", "churn-demo", "2", "-c", config)
    assert lineage_v2.returncode == 1, "the interrupted run left a second version behind"
    assert "has no version '2'" in lineage_v2.stderr


def interrupt_while_validating(cli: Cli, project: Path) -> subprocess.Popen[str]:
    """A run stopped by Ctrl-C while validation runs beside it (the worker may still be
    importing Great Expectations); returns the finished process."""
    assert cli("demo", "--dir", str(project), "--rows", "1500").returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CONVEYOR_"))}
    proc = subprocess.Popen(
        [CONVEYOR, "run", "-c", str(project / "conveyor.yaml")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_step(project, "validate")
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    return proc


def test_ctrl_c_while_validating_beside_ends_the_run_as_interrupted(
    cli: Cli, tmp_path: Path
) -> None:
    project = tmp_path / "demo"
    proc = interrupt_while_validating(cli, project)
    records = [json.loads(r.read_text()) for r in project.glob(".conveyor/runs/*/record.json")]
    assert (proc.returncode, [r["status"] for r in records]) == (130, ["interrupted"])


def test_ctrl_c_while_validating_beside_leaves_no_worker(cli: Cli, tmp_path: Path) -> None:
    proc = interrupt_while_validating(cli, tmp_path / "demo")
    deadline = time.monotonic() + 10  # a worker told to stop is given 5 s before a kill
    while time.monotonic() < deadline and side_workers_of(proc.pid):
        time.sleep(0.1)
    assert side_workers_of(proc.pid) == []


def side_workers_of(run_pid: int) -> list[int]:
    """Side-step workers started by the run with this process id, still alive."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if (
            "conveyor.pipeline.side" in cmdline
            and cmdline[-1:] == [str(run_pid)]
            and process.info["status"] != psutil.STATUS_ZOMBIE
        ):
            found.append(process.pid)
    return found
