"""Two `conveyor` processes on one project take turns: no duplicate version, no lost alias."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.integration.faults.conftest import conveyor, lean_project, start, wait_for

from conveyor.pipeline.lock import read_holder
from conveyor.registry.store import ModelRegistry

pytestmark = pytest.mark.integration

NAME = "churn-demo"


def _registry(project: Path) -> ModelRegistry:
    return ModelRegistry(f"sqlite:///{project / '.conveyor' / 'mlflow.db'}")


def _alias(registry: ModelRegistry, alias: str) -> str | None:
    found = registry.get_alias(NAME, alias)
    return found.version if found else None


def test_two_runs_at_once_take_turns_and_register_one_version(tmp_path: Path) -> None:
    project = tmp_path / "demo"
    config = str(lean_project(project))
    runs = [start("run", "-c", config, cwd=tmp_path, name=f"run{i}") for i in (1, 2)]
    results = [run.finish() for run in runs]

    assert [code for code, _, _ in results] == [0, 0], results
    waited = [
        (run, err) for run, (_, _, err) in zip(runs, results, strict=True) if "waiting" in err
    ]
    assert len(waited) == 1, f"exactly one run waits for the other: {results}"
    other = next(run for run in runs if run is not waited[0][0])
    assert re.search(rf"waiting for run \S+ \(pid {other.process.pid}\) to finish", waited[0][1])
    registry = _registry(project)
    assert [v.version for v in registry.list_versions(NAME)] == ["1"]
    assert (_alias(registry, "champion"), _alias(registry, "previous")) == ("1", None)


def test_a_promote_during_a_run_waits_and_no_previous_is_lost(tmp_path: Path) -> None:
    project = tmp_path / "demo"
    config = str(lean_project(project))
    assert conveyor("run", "-c", config, cwd=tmp_path).returncode == 0  # v1, champion
    lean_project(project, seed=7)  # new rows: the next run makes v2 and crowns it

    run = start("run", "-c", config, cwd=tmp_path, name="run")
    lock = project / ".conveyor" / "run.lock"
    wait_for(lambda: read_holder(lock).pid == run.process.pid, what="the run to take the lock")
    promote = start("promote", NAME, "1", "-c", config, cwd=tmp_path, name="promote")
    run_code, run_out, _ = run.finish()
    promote_code, _, promote_err = promote.finish()

    assert run_code == 0, run_out
    assert "churn-demo v2 -> champion" in run_out
    assert promote_code == 0, promote_err
    assert f"(pid {run.process.pid}) to finish" in promote_err
    # One after the other: the run crowned v2 (previous v1), then v1 came back (previous v2).
    registry = _registry(project)
    assert (_alias(registry, "champion"), _alias(registry, "previous")) == ("1", "2")
