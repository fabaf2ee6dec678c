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


def _json_listing(output: str) -> list[dict[str, Any]]:
    """The JSON list an ``airflow ... -o json`` command printed last (after any log lines)."""
    listing = next(ln for ln in reversed(output.splitlines()) if ln.startswith("["))
    rows: list[dict[str, Any]] = json.loads(listing)
    return rows


def _register_dags(airflow: Airflow) -> None:
    """Serialize dags/ into this session's DB: the training DAG must be known before counting
    its runs, else an empty count proves nothing."""
    serialized = airflow("dags", "reserialize", timeout=300)
    assert serialized.returncode == 0, serialized.stdout[-3000:]
    listed = airflow("dags", "list", "-o", "json")
    assert listed.returncode == 0, listed.stdout[-3000:]
    assert "conveyor_training" in {d["dag_id"] for d in _json_listing(listed.stdout)}


def _training_runs(airflow: Airflow) -> list[dict[str, Any]]:
    """The runs of conveyor_training; fails when the DAG is unknown to this DB."""
    done = airflow("dags", "list-runs", "conveyor_training", "-o", "json")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "does not exist" not in done.stdout, done.stdout[-3000:]
    return _json_listing(done.stdout)


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

    _register_dags(airflow)
    before = {r["run_id"] for r in _training_runs(airflow)}  # other tests may share the DB

    clean = _check(airflow, config, batches["clean"], "2026-02-01")
    assert "drift detected: False" in clean, clean[-4000:]
    assert {r["run_id"] for r in _training_runs(airflow)} == before, "clean data triggered"

    drifted = _check(airflow, config, batches["drifted"], "2026-02-02")
    assert "drift detected: True" in drifted, drifted[-4000:]
    new = [r for r in _training_runs(airflow) if r["run_id"] not in before]
    assert len(new) == 1, new
    assert new[0]["dag_id"] == "conveyor_training"
