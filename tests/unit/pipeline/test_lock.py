"""The project lock between real processes: wait, say for whom, give up, survive a crash."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.errors import ProjectBusyError
from conveyor.pipeline.lock import LockHolder, project_lock

HOLD = """
import sys
from pathlib import Path
from conveyor.pipeline.lock import project_lock
with project_lock(Path(sys.argv[1]), command="run", run_id="20261204T000000-abcdef", timeout=0):
    print("held", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the project's lock until its stdin closes."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    yield process
    process.kill()
    process.wait()


def test_a_busy_project_gives_up_after_the_timeout_naming_the_holder(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    with (
        pytest.raises(ProjectBusyError, match=rf"run 20261204T000000-abcdef \(pid {holder.pid}\)"),
        project_lock(tmp_path, command="run", timeout=0.3),
    ):
        pass


def test_a_waiting_command_says_once_whom_it_waits_for(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    seen: list[LockHolder] = []
    with (
        pytest.raises(ProjectBusyError),
        project_lock(tmp_path, command="promote", timeout=1.0, on_wait=seen.append),
    ):
        pass
    assert [(h.pid, h.run_id, h.command) for h in seen] == [
        (holder.pid, "20261204T000000-abcdef", "run")
    ]


def test_the_lock_passes_on_when_the_holder_finishes(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    assert holder.stdin is not None
    seen: list[LockHolder] = []
    started = time.monotonic()

    def release(who: LockHolder) -> None:
        seen.append(who)
        holder.stdin.close()  # type: ignore[union-attr]

    with project_lock(tmp_path, command="promote", timeout=60, on_wait=release):
        assert holder.wait(timeout=30) == 0
    assert len(seen) == 1
    assert time.monotonic() - started < 30


def test_a_killed_holder_leaves_the_lock_free(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with project_lock(tmp_path, command="run", timeout=0):
        assert (tmp_path / "run.lock").is_file()


def test_the_lock_is_reentrant_within_a_thread(tmp_path: Path) -> None:
    with (
        project_lock(tmp_path, command="run", timeout=0),
        project_lock(tmp_path, command="run", timeout=0),
    ):
        pass
    with project_lock(tmp_path, command="promote", timeout=0):
        pass
