"""``conveyor_monitoring`` triggers a training run on drifted data, and only then."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Airflow = Any  # conftest.Airflow: airflow(*args), airflow.python(code)
Cli = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = [pytest.mark.integration]


def _check(airflow: Airflow, config: Path, data: Path, date: str) -> str:
    conf = {"config": str(config), "model": "churn-demo", "data": str(data)}
    done = airflow("dags", "test", "conveyor_monitoring", date, "--conf", json.dumps(conf))
    assert done.returncode == 0, done.stdout[-4000:]
    return done.stdout


def _training_runs(airflow: Airflow) -> list[dict[str, Any]]:
    done = airflow("dags", "list-runs", "conveyor_training", "-o", "json")
    if "does not exist in 'dag' table" in done.stdout:  # not parsed into this DB yet: no runs
        return []
    assert done.returncode == 0, done.stdout[-3000:]
    listing = next(ln for ln in reversed(done.stdout.splitlines()) if ln.startswith("["))
    runs: list[dict[str, Any]] = json.loads(listing)
    return runs


def test_drift_triggers_training_and_clean_data_does_not(
    airflow: Airflow, conveyor: Cli, tmp_path: Path
) -> None:
    project = tmp_path / "demo"
    assert conveyor("demo", "--dir", str(project), "--rows", "600", cwd=tmp_path).returncode == 0
    config = project / "conveyor.yaml"
    trained = conveyor("run", "-c", str(config), cwd=project)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    batches = {}
    for name, drift in (("clean", "0"), ("drifted", "2.0")):
        made = conveyor(
            "demo", "--dir", str(tmp_path / name), "--rows", "600", "--seed", "5",
            "--drift", drift, cwd=tmp_path,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        batches[name] = tmp_path / name / "data" / "churn.csv"

    before = {r["run_id"] for r in _training_runs(airflow)}  # other tests may share the DB

    clean = _check(airflow, config, batches["clean"], "2026-02-01")
    assert "drift detected: False" in clean, clean[-4000:]
    assert {r["run_id"] for r in _training_runs(airflow)} == before, "clean data triggered"

    drifted = _check(airflow, config, batches["drifted"], "2026-02-02")
    assert "drift detected: True" in drifted, drifted[-4000:]
    new = [r for r in _training_runs(airflow) if r["run_id"] not in before]
    assert len(new) == 1, new
    assert new[0]["dag_id"] == "conveyor_training"
