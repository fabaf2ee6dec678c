"""Airflow DAG ``conveyor_monitoring``: batch drift check, and retraining when it holds.

``conveyor monitor drift`` compares recent data with the champion's reference profile and
writes ``drift.json``; when ``drift_detected`` is true the DAG triggers
``conveyor_training`` for the same project. The check itself lives in Conveyor; this file
only wires it. See docs/airflow.md.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, Param, chain
from conveyor_dags.operators import ConveyorDriftCheckOperator, record_failure
from conveyor_dags.settings import conveyor_run_id, default_args, schedule

CONFIG = "{{ params.config or var.value.get('conveyor_config', '') }}"
OUT_DIR = str(Path(tempfile.gettempdir()) / "conveyor-monitoring")


def _drift_detected(result: dict[str, Any]) -> bool:
    """Short-circuit: go on to retraining only when the check found drift."""
    return bool(result["drift_detected"])


with DAG(
    dag_id="conveyor_monitoring",
    description="Conveyor batch drift check; triggers conveyor_training on drift",
    doc_md=__doc__,
    schedule=schedule("conveyor_monitoring_schedule", "@daily"),
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["conveyor", "monitoring"],
    user_defined_macros={"conveyor_run_id": conveyor_run_id},
    params={
        "config": Param(
            "", type="string", description="conveyor.yaml (default: Variable conveyor_config)."
        ),
        "model": Param(
            "", type="string", description="Registered model (default: Variable conveyor_model)."
        ),
        "data": Param(
            "",
            type="string",
            description="Recent data to check (default: Variable conveyor_monitoring_data).",
        ),
    },
) as dag:
    check = ConveyorDriftCheckOperator(
        task_id="check_drift",
        config=CONFIG,
        model="{{ params.model or var.value.get('conveyor_model', '') }}",
        data="{{ params.data or var.value.get('conveyor_monitoring_data', '') }}",
        out_dir="{{ var.value.get('conveyor_monitoring_dir', '" + OUT_DIR + "') }}",
        execution_timeout=timedelta(minutes=30),
        on_failure_callback=record_failure,
    )
    drifted = ShortCircuitOperator(
        task_id="drift_detected",
        python_callable=_drift_detected,
        op_args=[check.output],
        execution_timeout=timedelta(minutes=5),
    )
    retrain = TriggerDagRunOperator(
        task_id="trigger_training",
        trigger_dag_id="conveyor_training",
        conf={"config": CONFIG, "force": False},
        note="triggered by conveyor_monitoring: drift detected",
        execution_timeout=timedelta(minutes=5),
        on_failure_callback=record_failure,
    )
    chain(check, drifted, retrain)
