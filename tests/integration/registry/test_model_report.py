"""A real ``conveyor run`` logs the HTML model report with the version, and lineage finds it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.integration.parity.test_raw_row_parity import Trained, train
from tests.messy_tables import messy_table

from conveyor.registry.tracking_store import REPORT_PATH

pytestmark = pytest.mark.integration

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))


@dataclass(frozen=True)
class Project:
    folder: Path
    trained: Trained


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    folder = tmp_path_factory.mktemp("report")
    return Project(folder, train(folder, messy_table(1200, seed=3), name="report-model"))


def test_the_registered_versions_run_holds_the_report(project: Project) -> None:
    registry, name = project.trained.registry, project.trained.name
    assert REPORT_PATH in registry.lineage(name, "1")["artifacts"]
    location = registry.report_location(name, "1")
    assert location is not None
    page = Path(location).read_text(encoding="utf-8")
    assert "<h1>Model report: report-model (lightgbm)</h1>" in page
    assert "permutation importance: drop in roc_auc on 240 held-out rows, 5 repeats" in page


def test_the_report_shows_the_metrics_the_run_logged(project: Project) -> None:
    registry, name = project.trained.registry, project.trained.name
    info = registry.get_version(name, "1")
    location = registry.report_location(name, "1")
    assert location is not None
    page = Path(location).read_text(encoding="utf-8")
    roc_auc = registry.run_metrics(info.run_id)["roc_auc"]
    assert f'<td>roc_auc (primary)</td><td class="num">{roc_auc:.4g}</td><td>-</td>' in page


def test_lineage_on_the_command_line_names_the_report(project: Project) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CONVEYOR_"))}
    done = subprocess.run(
        [CONVEYOR, "lineage", project.trained.name, "1", "-c", "conveyor.yaml"],
        cwd=project.folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)["report"]
    assert report.endswith(REPORT_PATH)
    assert Path(report).read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
