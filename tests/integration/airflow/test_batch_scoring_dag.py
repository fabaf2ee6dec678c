"""``conveyor_batch_scoring`` scores a messy table with the champion; bad rows are counted."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.messy_tables import messy_table, write_project

Airflow = Any  # conftest.Airflow: airflow(*args), airflow.python(code)
Cli = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = [pytest.mark.integration]


def test_a_dag_run_scores_every_good_row_and_counts_the_bad(
    airflow: Airflow, conveyor: Cli, tmp_path: Path
) -> None:
    config = write_project(tmp_path / "project", messy_table(600, seed=8), name="scoring")
    trained = conveyor("run", "-c", str(config), cwd=config.parent)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    rows = messy_table(300, seed=9)
    rows["capital.gain"] = rows["capital.gain"].astype(object)
    rows.loc[7, "capital.gain"] = "n/k"
    data = tmp_path / "to-score.csv"
    rows.to_csv(data, index=False)
    out = tmp_path / "answers"
    conf = {"config": str(config), "data": str(data)}
    done = airflow(
        "dags", "test", "conveyor_batch_scoring", "2026-03-01", "--conf", json.dumps(conf),
        extra_env={"AIRFLOW_VAR_CONVEYOR_SCORING_DIR": str(out)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:]
    (answers,) = out.glob("*.parquet")
    scored = pd.read_parquet(answers)
    assert len(scored) == len(rows) - 1
    assert set(scored["model_version"]) == {"1"}
    assert pd.read_csv(next(out.glob("*.rejects.csv")))["row"].tolist() == [7]
