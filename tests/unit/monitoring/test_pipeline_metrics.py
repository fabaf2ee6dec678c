"""Pipeline gauges from run records: values, textfile, Pushgateway push, the runner's hook."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conveyor.config import ConveyorConfig
from conveyor.errors import DataValidationError
from conveyor.monitoring.pipeline_metrics import (
    pipeline_metrics,
    publish_pipeline_metrics,
    textfile_path,
)
from conveyor.pipeline.context import RunContext
from conveyor.pipeline.project import Project
from conveyor.pipeline.runner import PipelineRunner
from conveyor.pipeline.steps import Step
from conveyor.settings import Settings

NOTHING_SET = Settings(metrics_textfile=None, pushgateway_url=None)


def textfile(value: str) -> Settings:
    return Settings(metrics_textfile=value, pushgateway_url=None)


def _step(status: str, seconds: float, summary: dict[str, Any]) -> dict[str, Any]:
    return {"status": status, "seconds": seconds, "summary": summary}


def succeeded_record() -> dict[str, Any]:
    return {
        "run_id": "20261126T080000-abcdef",
        "project": "churn-demo",
        "status": "succeeded",
        "started_at": "2026-11-26T08:00:00+00:00",
        "finished_at": "2026-11-26T08:01:00+00:00",
        "steps": {
            "ingest": _step("cached", 0.01, {"rows": 1986, "columns": 10}),
            "validate": _step("succeeded", 11.3, {"success": True, "evaluated": 12}),
            "version": _step("succeeded", 3.0, {"md5": "x"}),
            "split": _step("succeeded", 0.5, {"train_rows": 1588}),
            "train": _step("succeeded", 8.4, {"model": "lightgbm"}),
            "evaluate": _step("succeeded", 4.7, {"metrics": {"roc_auc": 0.85, "f1": 0.56}}),
            "register": _step("succeeded", 36.2, {"name": "churn-demo", "version": "3"}),
            "promote": _step("succeeded", 0.3, {"passed": True, "alias": "champion"}),
        },
    }


def failed_validation_record() -> dict[str, Any]:
    record = succeeded_record()
    record["status"] = "failed"
    record["steps"] = {
        "ingest": record["steps"]["ingest"],
        "validate": {"status": "failed", "error": "data validation failed: 2 of 12"},
    }
    record["validation_failures"] = ["age: 2 values below 18"]
    return record


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a textfile, keyed by (name, sorted labels)."""
    found = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def one(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted({"pipeline": "churn-demo", **labels}.items()))


def test_values_of_a_successful_run() -> None:
    values = pipeline_metrics(succeeded_record())
    assert values.pipeline == "churn-demo"
    assert values.last_run_success == 1
    assert values.last_run_timestamp_seconds == 1795680060.0  # 2026-11-26T08:01:00Z
    assert values.step_cached == {
        "ingest": 1,
        **dict.fromkeys(("validate", "version", "split", "train", "evaluate"), 0),
        "register": 0,
        "promote": 0,
    }
    assert values.step_duration_seconds["register"] == 36.2
    assert values.data_rows == 1986
    assert values.validation_passed == 1
    assert values.model_metric == {"roc_auc": 0.85, "f1": 0.56}
    assert values.registered_version == 3
    assert values.promoted == 1


def test_values_of_a_run_that_failed_validation() -> None:
    values = pipeline_metrics(failed_validation_record())
    assert values.last_run_success == 0
    assert values.validation_passed == 0
    assert values.data_rows == 1986
    assert values.model_metric == {}
    assert values.registered_version is None
    assert values.promoted == 0
    assert set(values.step_duration_seconds) == {"ingest"}  # the failed step has no duration


def test_a_gated_model_is_not_promoted() -> None:
    record = succeeded_record()
    record["steps"]["promote"]["summary"] = {"passed": False, "alias": "challenger"}
    assert pipeline_metrics(record).promoted == 0


def test_a_model_that_failed_the_gate_says_so() -> None:
    record = succeeded_record()
    record["steps"]["promote"]["summary"] = {"passed": False, "alias": "challenger"}
    assert pipeline_metrics(record).gate_passed == 0


def test_a_model_that_passed_the_gate_says_so() -> None:
    assert pipeline_metrics(succeeded_record()).gate_passed == 1


def test_a_run_that_stopped_before_the_gate_has_no_gate_result() -> None:
    assert pipeline_metrics(failed_validation_record()).gate_passed is None


def test_textfile_has_every_contract_gauge(tmp_path: Path) -> None:
    section = publish_pipeline_metrics(succeeded_record(), state_dir=tmp_path, settings=NOTHING_SET)
    assert section is not None
    path = tmp_path / "metrics" / "conveyor_pipeline.prom"
    assert section["textfile"] == {"path": str(path), "ok": True}
    assert section["push"] is None
    got = samples(path)
    assert got[one("conveyor_pipeline_last_run_success")] == 1.0
    assert got[one("conveyor_pipeline_last_run_timestamp_seconds")] == 1795680060.0
    assert got[one("conveyor_pipeline_step_duration_seconds", step="train")] == 8.4
    assert got[one("conveyor_pipeline_step_cached", step="ingest")] == 1.0
    assert got[one("conveyor_pipeline_data_rows")] == 1986.0
    assert got[one("conveyor_pipeline_validation_passed")] == 1.0
    assert got[one("conveyor_pipeline_model_metric", metric="roc_auc")] == 0.85
    assert got[one("conveyor_pipeline_registered_version")] == 3.0
    assert got[one("conveyor_pipeline_promoted")] == 1.0
    assert got[one("conveyor_pipeline_gate_passed")] == 1.0
    assert sorted(p.name for p in path.parent.iterdir()) == ["conveyor_pipeline.prom"]


def test_failed_run_rewrites_the_file_without_stale_gauges(tmp_path: Path) -> None:
    publish_pipeline_metrics(succeeded_record(), state_dir=tmp_path, settings=NOTHING_SET)
    publish_pipeline_metrics(failed_validation_record(), state_dir=tmp_path, settings=NOTHING_SET)
    got = samples(tmp_path / "metrics" / "conveyor_pipeline.prom")
    assert got[one("conveyor_pipeline_last_run_success")] == 0.0
    assert got[one("conveyor_pipeline_validation_passed")] == 0.0
    assert got[one("conveyor_pipeline_promoted")] == 0.0
    assert not any(name == "conveyor_pipeline_model_metric" for name, _ in got)
    assert not any(name == "conveyor_pipeline_registered_version" for name, _ in got)
    assert not any(name == "conveyor_pipeline_gate_passed" for name, _ in got)


def test_unfinished_run_publishes_nothing(tmp_path: Path) -> None:
    record = {**succeeded_record(), "status": "partial"}
    assert publish_pipeline_metrics(record, state_dir=tmp_path, settings=NOTHING_SET) is None
    assert not (tmp_path / "metrics").exists()


def test_textfile_location_from_the_environment(tmp_path: Path) -> None:
    default = tmp_path / "metrics" / "conveyor_pipeline.prom"
    assert textfile_path(tmp_path, "churn-demo", settings=NOTHING_SET) == default
    assert textfile_path(tmp_path, "x", settings=textfile("off")) is None
    chosen = tmp_path / "node" / "conveyor.prom"
    assert textfile_path(tmp_path, "x", settings=textfile(str(chosen))) == chosen
    folder = textfile(f"{tmp_path}/collector/")
    expected = tmp_path / "collector" / "conveyor_pipeline_churn_demo_v2.prom"
    assert textfile_path(tmp_path, "churn demo/v2", settings=folder) == expected


def test_unwritable_textfile_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings = textfile(str(blocker / "sub" / "conveyor.prom"))
    with caplog.at_level(logging.WARNING):
        section = publish_pipeline_metrics(
            succeeded_record(), state_dir=tmp_path, settings=settings
        )
    assert section is not None
    assert section["textfile"]["ok"] is False
    assert "cannot write textfile" in caplog.text


# -- Pushgateway --------------------------------------------------------------
# A push that lands: tests/integration/monitoring/test_pushgateway.py (a real Pushgateway).
def test_push_failure_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(metrics_textfile=None, pushgateway_url="http://user:secret@127.0.0.1:9")
    with caplog.at_level(logging.WARNING):  # nothing listens on port 9
        section = publish_pipeline_metrics(
            succeeded_record(), state_dir=tmp_path, settings=settings
        )
    assert section is not None
    assert section["push"]["ok"] is False
    assert section["push"]["url"] == "http://user:***@127.0.0.1:9"
    assert "secret" not in caplog.text and "push to" in caplog.text
    assert section["textfile"]["ok"] is True  # the textfile does not depend on the push


# -- the runner's hook -------------------------------------------------------
def fake_steps(fail: bool) -> tuple[Step, ...]:
    def ingest(ctx: RunContext, out: Path) -> dict[str, Any]:
        return {"rows": 42}

    def validate(ctx: RunContext, out: Path) -> dict[str, Any]:
        if fail:
            raise DataValidationError("data validation failed", failures=["age < 0"])
        return {"success": True, "evaluated": 3}

    return (
        Step("ingest", "ingest", (), lambda ctx: None, ingest),
        Step("validate", "validate", ("ingest",), lambda ctx: None, validate),
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.delenv("CONVEYOR_METRICS_TEXTFILE", raising=False)
    monkeypatch.delenv("CONVEYOR_PUSHGATEWAY_URL", raising=False)
    config = ConveyorConfig.model_validate(
        {"name": "t", "data": {"source": "x.csv", "target": "y"}}
    )
    return Project.open(config, config_dir=tmp_path, settings=Settings())


def test_runner_publishes_a_successful_run(project: Project) -> None:
    runner = PipelineRunner(project, steps=fake_steps(fail=False))
    record = runner.run()
    on_disk = json.loads((project.runs_dir / record["run_id"] / "record.json").read_text())
    assert on_disk["metrics"]["values"]["last_run_success"] == 1
    assert on_disk["metrics"]["values"]["data_rows"] == 42
    textfile = project.state_dir / "metrics" / "conveyor_pipeline.prom"
    assert on_disk["metrics"]["textfile"]["path"] == str(textfile)
    got = samples(textfile)
    assert got[("conveyor_pipeline_last_run_success", (("pipeline", "t"),))] == 1.0


def test_runner_publishes_a_failed_run_and_still_raises(project: Project) -> None:
    runner = PipelineRunner(project, steps=fake_steps(fail=True))
    with pytest.raises(DataValidationError):
        runner.run()
    assert runner.last_run_id is not None
    on_disk = json.loads((project.runs_dir / runner.last_run_id / "record.json").read_text())
    assert on_disk["status"] == "failed"
    assert on_disk["metrics"]["values"]["validation_passed"] == 0
    got = samples(project.state_dir / "metrics" / "conveyor_pipeline.prom")
    assert got[("conveyor_pipeline_last_run_success", (("pipeline", "t"),))] == 0.0
    assert got[("conveyor_pipeline_validation_passed", (("pipeline", "t"),))] == 0.0


def test_single_step_run_publishes_only_when_finished(project: Project) -> None:
    runner = PipelineRunner(project, steps=fake_steps(fail=False))
    partial = runner.run_step("ingest", run_id="20261126T080000-000001")
    assert partial["status"] == "partial" and "metrics" not in partial
    assert not (project.state_dir / "metrics").exists()
    done = runner.run_step("validate", run_id="20261126T080000-000001")
    assert done["status"] == "succeeded"
    assert done["metrics"]["values"]["step_duration_seconds"].keys() == {"ingest", "validate"}
