"""Every DAG in dags/ loads in the real Airflow 3 environment, wired and guarded as set."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from conveyor.pipeline.steps import STEPS as PIPELINE

Airflow = Any  # conftest.Airflow: airflow(*args), airflow.python(code)
REPO = Path(__file__).resolve().parents[3]

pytestmark = [pytest.mark.integration]

STEPS = [step.name for step in PIPELINE]  # the DAG runs Conveyor's own pipeline

# Runs inside .venv-airflow: loads dags/ as the dag-processor does (a bundle on sys.path)
# and describes each DAG.
DESCRIBE = """
import json
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
folder = Path(DAGS)
bag = BundleDagBag(dag_folder=folder, bundle_path=folder)
dags = {}
for dag_id, dag in bag.dags.items():
    order = [t.task_id for t in dag.topological_sort()]
    dags[dag_id] = {
        "tags": sorted(dag.tags),
        "schedule": dag.schedule if dag.schedule is None else str(dag.schedule),
        "params": sorted(dag.params.keys()),
        "order": order,
        "tasks": {
            t.task_id: {
                "type": type(t).__name__,
                "owner": t.owner,
                "retries": t.retries,
                "backoff": t.retry_exponential_backoff,
                "timeout": t.execution_timeout.total_seconds() if t.execution_timeout else None,
                "downstream": sorted(t.downstream_task_ids),
                "failure_callbacks": len(t.on_failure_callback or []),
            }
            for t in dag.tasks
        },
    }
print("REPORT" + json.dumps({"errors": bag.import_errors, "dags": dags}))
"""


def _describe(airflow: Airflow, **variables: str) -> dict[str, Any]:
    env = {f"AIRFLOW_VAR_{k.upper()}": v for k, v in variables.items()}
    done = airflow.python(DESCRIBE.replace("DAGS", repr(str(REPO / "dags"))), extra_env=env)
    assert done.returncode == 0, done.stdout[-3000:]
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("REPORT"))
    report: dict[str, Any] = json.loads(line.removeprefix("REPORT"))
    assert report["errors"] == {}, report["errors"]
    return report


def _assert_guarded(dag: dict[str, Any]) -> None:
    for task_id, task in dag["tasks"].items():
        assert task["owner"] == "conveyor", task_id
        assert task["retries"] == 3, task_id
        assert task["backoff"] == 2.0, task_id
        assert task["timeout"] and task["timeout"] > 0, f"{task_id} has no execution_timeout"


def test_dags_import_without_errors_and_every_task_is_guarded(airflow: Airflow) -> None:
    report = _describe(airflow)

    assert set(report["dags"]) == {
        "conveyor_training",
        "conveyor_monitoring",
        "conveyor_batch_scoring",
    }
    training = report["dags"]["conveyor_training"]
    assert training["order"] == STEPS, "the steps must run in pipeline order"
    for upstream, downstream in itertools.pairwise(STEPS):
        assert training["tasks"][upstream]["downstream"] == [downstream]
    assert training["tags"] == ["conveyor", "training"]
    assert training["params"] == ["config", "force", "source"]
    assert training["schedule"] is None, "training runs when triggered unless a Variable says"
    assert {t["type"] for t in training["tasks"].values()} == {"ConveyorStepOperator"}
    assert all(t["failure_callbacks"] == 1 for t in training["tasks"].values())
    assert training["tasks"]["train"]["timeout"] > training["tasks"]["ingest"]["timeout"]
    _assert_guarded(training)

    monitoring = report["dags"]["conveyor_monitoring"]
    assert monitoring["order"] == ["check_drift", "drift_detected", "trigger_training"]
    assert monitoring["tags"] == ["conveyor", "monitoring"]
    assert monitoring["schedule"] == "@daily"
    _assert_guarded(monitoring)

    scoring = report["dags"]["conveyor_batch_scoring"]
    assert {t["type"] for t in scoring["tasks"].values()} == {"ConveyorPredictOperator"}
    assert scoring["params"] == ["config", "data", "model"]
    assert scoring["schedule"] == "@daily"
    _assert_guarded(scoring)


def test_variables_switch_schedule_and_kubernetes_pods(airflow: Airflow) -> None:
    report = _describe(
        airflow, conveyor_executor="kubernetes", conveyor_training_schedule="0 3 * * *"
    )

    training = report["dags"]["conveyor_training"]
    assert {t["type"] for t in training["tasks"].values()} == {"KubernetesPodOperator"}
    assert training["order"] == STEPS
    assert training["schedule"] == "0 3 * * *"
    _assert_guarded(training)
