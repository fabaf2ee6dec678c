"""Ctrl-C or a crash mid-run: no partial registration, and the next run resumes cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.e2e

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))


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


@pytest.mark.parametrize(
    ("sig", "status"), [(signal.SIGINT, "interrupted"), (signal.SIGKILL, "running")]
)
def test_stop_during_register_then_resume(
    cli: Cli, tmp_path: Path, sig: signal.Signals, status: str
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
    time.sleep(1.0)  # well inside MLflow's logging work
    proc.send_signal(sig)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    records = [json.loads(r.read_text()) for r in project.glob(".conveyor/runs/*/record.json")]
    assert [r["status"] for r in records] == [status]

    resumed = cli("run", "-c", config)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    for step in ("ingest", "validate", "version", "split", "train", "evaluate"):
        assert f"{step}" in resumed.stdout
    assert resumed.stdout.count("cached") >= 6
    assert "churn-demo v1 -> champion" in resumed.stdout
    lineage_v2 = cli("lineage", "churn-demo", "2", "-c", config)
    assert lineage_v2.returncode != 0, "the interrupted run left a second version behind"
