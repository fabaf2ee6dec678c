"""A new replica that runs but never turns ready stops the rollout at its deadline.

The replica here is a real HTTP server that answers every path with 404, /readyz too: it
stays up, as a replica whose registry never answers does, and never becomes ready."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from tests.integration.faults.conftest import free_port
from tests.source_files import load_module

ROLLOUT_PY = Path(__file__).resolve().parents[3] / "deploy" / "rollout" / "rollout.py"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    return load_module(ROLLOUT_PY, "rollout_tool_deadline")


@pytest.fixture
def never_ready(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield port, server
    finally:
        server.kill()
        server.wait()


def test_a_replica_never_ready_stops_at_the_deadline_naming_it(
    tool: ModuleType, never_ready: tuple[int, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    port, server = never_ready
    log = tmp_path / "serve-9.log"
    log.write_text("loading models:/m/9 ...\n", encoding="utf-8")
    replica = tool.Replica("serve-9", port, server.pid, "models:/m/9", str(log))
    with pytest.raises(tool.RolloutError) as raised:
        tool.wait_ready(replica, 1.0)
    assert str(raised.value).splitlines() == [
        "serve-9 (models:/m/9) was not ready within 1 s:",
        "loading models:/m/9 ...",
    ]
    assert server.poll() is None  # it was still running: the deadline stopped the wait
