"""Two `conveyor` processes on one project take turns: no duplicate version, no lost alias."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.integration.faults.conftest import Started, conveyor, lean_project, start, wait_for

from conveyor.pipeline.lock import read_holder
from conveyor.registry.store import ModelRegistry

pytestmark = pytest.mark.integration

NAME = "churn-demo"


def _registry(project: Path) -> ModelRegistry:
    return ModelRegistry(f"sqlite:///{project / '.conveyor' / 'mlflow.db'}")


def _alias(registry: ModelRegistry, alias: str) -> str | None:
    found = registry.get_alias(NAME, alias)
    return found.version if found else None


@contextmanager
def paused(process: subprocess.Popen[bytes]) -> Iterator[None]:
    """SIGSTOP ``process`` for the block: it keeps its lock and does no work until SIGCONT."""
    os.kill(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(process.pid, signal.SIGCONT)


def wait_until_waiting(started: Started, holder: Started) -> None:
    """Until ``started`` said on stderr that it waits for ``holder``'s lock."""
    wait_for(
        lambda: (
            f"(pid {holder.process.pid}) to finish" in started.err.read_text(errors="replace")
            or started.process.poll() is not None
        ),
        what="the second command to wait for the lock",
    )


def test_two_runs_at_once_take_turns_and_register_one_version(tmp_path: Path) -> None:
    project = tmp_path / "demo"
    config = str(lean_project(project))
    lock = project / ".conveyor" / "run.lock"
    run1 = start("run", "-c", config, cwd=tmp_path, name="run1")
    wait_for(lambda: read_holder(lock).pid == run1.process.pid, what="run1 to take the lock")
    with paused(run1.process):  # run1 holds the lock until run2 is seen waiting for it
        run2 = start("run", "-c", config, cwd=tmp_path, name="run2")
        wait_until_waiting(run2, run1)
    (code1, _, err1), (code2, _, err2) = run1.finish(), run2.finish()

    assert (code1, code2) == (0, 0), (err1, err2)
    assert "project lock" not in err1  # run1 never waited
    assert re.search(rf"waiting for run \S+ \(pid {run1.process.pid}\) to finish", err2), err2
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
    with paused(run.process):  # the run holds the lock until the promote is seen waiting
        promote = start("promote", NAME, "1", "-c", config, cwd=tmp_path, name="promote")
        wait_until_waiting(promote, run)
    run_code, run_out, _ = run.finish()
    promote_code, _, promote_err = promote.finish()

    assert run_code == 0, run_out
    assert "churn-demo v2 -> champion" in run_out
    assert promote_code == 0, promote_err
    assert f"(pid {run.process.pid}) to finish" in promote_err
    # One after the other: the run crowned v2 (previous v1), then v1 came back (previous v2).
    registry = _registry(project)
    assert (_alias(registry, "champion"), _alias(registry, "previous")) == ("1", "2")
