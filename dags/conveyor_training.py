"""Airflow DAG ``conveyor_training``: Conveyor's training pipeline, one task per step.

ingest -> validate -> version -> split -> train -> export -> evaluate -> register ->
promote, each task running ``conveyor run --step STEP --run-id ID`` of Conveyor's own
environment (or, with ``conveyor_executor=kubernetes``, a pod of the Conveyor image). The
DAG holds no pipeline logic: data travels between tasks in Conveyor's run store, by run id.

Trigger it for any project::

    airflow dags test conveyor_training --conf '{"config": "/path/conveyor.yaml"}'

See docs/airflow.md for Variables, params, retries and idempotency.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param, chain
from conveyor_dags.operators import ConveyorStepOperator, record_failure
from conveyor_dags.settings import (
    STEPS,
    conveyor_run_id,
    default_args,
    executor,
    schedule,
    step_timeout,
)

CONFIG = "{{ params.config or var.value.get('conveyor_config', '') }}"

with DAG(
    dag_id="conveyor_training",
    description="Conveyor training pipeline: validated, versioned, registered, gated model",
    doc_md=__doc__,
    schedule=schedule("conveyor_training_schedule", None),
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,  # one run at a time writes a project's stores (DVC, MLflow)
    default_args=default_args(),
    tags=["conveyor", "training"],
    user_defined_macros={"conveyor_run_id": conveyor_run_id},
    params={
        "config": Param(
            "",
            type="string",
            description="Path of the project's conveyor.yaml (default: Variable conveyor_config).",
        ),
        "force": Param(False, type="boolean", description="Ignore the step cache: retrain."),
        "source": Param(
            "",
            type="string",
            description="Data source to read instead of the config's data.source (path or URL).",
        ),
    },
) as dag:
    if executor() == "kubernetes":
        from conveyor_dags.kubernetes import step_pod

        tasks = [
            step_pod(
                step,
                config=CONFIG,
                task_id=step,
                execution_timeout=step_timeout(step),
                on_failure_callback=record_failure,
            )
            for step in STEPS
        ]
    else:
        tasks = [
            ConveyorStepOperator(
                task_id=step,
                step=step,
                config=CONFIG,
                force="{{ params.force }}",
                source="{{ params.source }}",
                execution_timeout=step_timeout(step),
                on_failure_callback=record_failure,
            )
            for step in STEPS
        ]
    chain(*tasks)
