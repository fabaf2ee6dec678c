"""Airflow DAG ``conveyor_batch_scoring``: score a table with the champion, on a schedule.

One task, ``conveyor predict``: the rows are cleaned by the model's own value rules and
scored by its ONNX Runtime fast path when verified; answers (with the model name and
version) go to ``OUT/<run>.parquet``, bad rows to ``OUT/<run>.rejects.csv``. Retries
follow the training DAG's rules: exit 75 (a store or database out of reach) is retried
with backoff, exit 1 or 2 is not. The scoring itself lives in Conveyor; this file only
wires it. See docs/airflow.md.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Param
from conveyor_dags.operators import ConveyorPredictOperator, record_failure
from conveyor_dags.settings import conveyor_run_id, default_args, schedule

CONFIG = "{{ params.config or var.value.get('conveyor_config', '') }}"
OUT_DIR = str(Path(tempfile.gettempdir()) / "conveyor-scoring")

with DAG(
    dag_id="conveyor_batch_scoring",
    description="Conveyor batch scoring: the champion over a table, answers to Parquet",
    doc_md=__doc__,
    schedule=schedule("conveyor_batch_scoring_schedule", "@daily"),
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["conveyor", "scoring"],
    user_defined_macros={"conveyor_run_id": conveyor_run_id},
    params={
        "config": Param(
            "", type="string", description="conveyor.yaml (default: Variable conveyor_config)."
        ),
        "model": Param(
            "",
            type="string",
            description="NAME, NAME@ALIAS or NAME/VERSION (default: Variable conveyor_model, "
            "else the project's champion).",
        ),
        "data": Param(
            "",
            type="string",
            description="Rows to score (default: Variable conveyor_scoring_data).",
        ),
    },
) as dag:
    ConveyorPredictOperator(
        task_id="score",
        config=CONFIG,
        model="{{ params.model or var.value.get('conveyor_model', '') }}",
        data="{{ params.data or var.value.get('conveyor_scoring_data', '') }}",
        out_dir="{{ var.value.get('conveyor_scoring_dir', '" + OUT_DIR + "') }}",
        execution_timeout=timedelta(hours=2),
        on_failure_callback=record_failure,
    )
