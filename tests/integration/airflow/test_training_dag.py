"""``airflow dags test conveyor_training`` runs the real pipeline on the demo data."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from conveyor.pipeline.steps import STEPS

Airflow = Any  # conftest.Airflow: airflow(*args), airflow.python(code)
Cli = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = [pytest.mark.integration]

RUN_ID = "20260101T000000-conveyor_training"
PASSWORD = "S3cr%40t-in-the-uri"


def _dag_test(airflow: Airflow, config: Path, date: str, **env: str) -> str:
    done = airflow(
        "dags",
        "test",
        "conveyor_training",
        date,
        "--conf",
        json.dumps({"config": str(config)}),
        extra_env={f"AIRFLOW_VAR_{k.upper()}": v for k, v in env.items()},
    )
    return f"exit {done.returncode}\n{done.stdout}"


def _final_state(output: str) -> str:
    found = re.findall(r"DagRun Finished: dag_id=conveyor_training.*? state=(\w+)", output)
    assert found, output[-3000:]
    return found[-1]


def _registry(project: Path) -> Any:
    from conveyor.registry.store import ModelRegistry

    return ModelRegistry(f"sqlite:///{project / '.conveyor' / 'mlflow.db'}")


def _record(project: Path, run_id: str) -> dict[str, Any]:
    path = project / ".conveyor" / "runs" / run_id / "record.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_dag_run_registers_a_version_with_lineage_once_per_logical_date(
    airflow: Airflow, conveyor: Cli, tmp_path: Path
) -> None:
    project = tmp_path / "demo"
    assert conveyor("demo", "--dir", str(project), "--rows", "600", cwd=tmp_path).returncode == 0
    config = project / "conveyor.yaml"

    first = _dag_test(airflow, config, "2026-01-01")

    assert _final_state(first) == "success", first[-4000:]
    assert f"[conveyor {RUN_ID}]" in first, "task logs must carry the Conveyor run id"
    record = _record(project, RUN_ID)
    assert record["status"] == "succeeded"
    assert list(record["steps"]) == [step.name for step in STEPS]
    registry = _registry(project)
    version = registry.get_version("churn-demo", "1")
    assert version.tags["conveyor.pipeline_run"] == RUN_ID
    assert version.tags["conveyor.data_md5"] == record["steps"]["version"]["summary"]["md5"]
    for tag in ("conveyor.config_hash", "conveyor.validation", "conveyor.parent_champion"):
        assert tag in version.tags
    assert "mlflow_run_id" in first and version.run_id in first, "XCom/log names the MLflow run"
    assert registry.get_alias("churn-demo", "champion").version == "1"

    again = _dag_test(airflow, config, "2026-01-01")

    assert _final_state(again) == "success", again[-4000:]
    steps = _record(project, RUN_ID)["steps"]
    assert {s["status"] for s in steps.values()} == {"cached"}, steps
    models = registry.list_models()
    assert [m["versions"] for m in models] == [1], "a re-run of the same date made a version"


def test_failed_validation_stops_the_run_at_validate_and_registers_nothing(
    airflow: Airflow, conveyor: Cli, tmp_path: Path
) -> None:
    project = tmp_path / "demo"
    assert conveyor("demo", "--dir", str(project), "--rows", "100", cwd=tmp_path).returncode == 0
    data = project / "data" / "churn.csv"
    data.write_text("\n".join(data.read_text().splitlines()[:31]) + "\n")  # 30 rows < min 50

    output = _dag_test(airflow, project / "conveyor.yaml", "2026-01-01")

    assert _final_state(output) == "failed", output[-4000:]
    failed = re.search(
        rf"conveyor run {RUN_ID}, task validate: exit 1: (.*?) \(not retried\)", output
    )
    assert failed, output[-4000:]
    assert "data validation failed" in failed.group(1)
    assert output.count("--step validate --run-id") == 1, "a failed validation was retried"
    assert "failed for good" in output, "the failure callback did not run"
    record = _record(project, RUN_ID)
    assert record["status"] == "failed"
    assert record["steps"]["validate"]["status"] == "failed"
    assert any("row" in line for line in record["validation_failures"]), record
    assert not {"register", "promote"} & set(record["steps"])
    assert _registry(project).list_models() == []


def test_unreachable_database_is_retried_with_backoff_then_fails(
    airflow: Airflow, tmp_path: Path
) -> None:
    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "conveyor.yaml"
    config.write_text(
        "name: pg-churn\n"
        "data:\n"
        f"  source: postgresql://conveyor:{PASSWORD}@127.0.0.1:{port}/conveyor\n"
        "  table: churn\n"
        "  target: churned\n"
    )

    output = _dag_test(airflow, config, "2026-01-01", conveyor_retries="1")

    assert _final_state(output) == "failed", output[-4000:]
    transient = re.findall(r"task ingest: transient failure \(exit 75\): cannot connect", output)
    assert len(transient) >= 2, f"expected a retry after exit 75:\n{output[-4000:]}"
    assert "up_for_retry" in output
    assert _record(tmp_path, RUN_ID)["steps"]["ingest"]["status"] == "failed"
    assert [form for form in (PASSWORD, unquote(PASSWORD)) if form in output] == []


def _dag_test_conf(airflow: Airflow, conf: dict[str, str], **env: str) -> str:
    done = airflow(
        "dags", "test", "conveyor_training", "2026-01-01", "--conf", json.dumps(conf),
        extra_env={f"AIRFLOW_VAR_{k.upper()}": v for k, v in env.items()},
    )  # fmt: skip
    return f"exit {done.returncode}\n{done.stdout}"


def test_a_config_param_outside_the_allowed_roots_is_refused_and_never_read(
    airflow: Airflow, tmp_path: Path
) -> None:
    output = _dag_test_conf(airflow, {"config": "/etc/passwd"}, conveyor_retries="1")
    assert _final_state(output) == "failed", output[-4000:]
    assert "config '/etc/passwd' is outside the allowed config roots" in output
    assert "root:" not in output  # not a byte of the file reached the log
    assert "run -c /etc/passwd" not in output  # the CLI never ran
    assert "up_for_retry" not in output


def test_a_source_param_outside_the_allowed_sources_is_refused_with_its_password_masked(
    airflow: Airflow, tmp_path: Path
) -> None:
    config = tmp_path / "conveyor.yaml"
    config.write_text("name: guarded\ndata:\n  source: data.csv\n  target: y\n")
    source = "postgresql://app:Hunter2-S3cret@db.internal:5432/crm"
    output = _dag_test_conf(airflow, {"config": str(config), "source": source})
    assert _final_state(output) == "failed", output[-4000:]
    assert "source 'postgresql://db.internal:5432/crm' is outside the allowed sources" in output
    assert "Hunter2-S3cret" not in output
