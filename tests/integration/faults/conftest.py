"""Real `conveyor` processes on small demo projects, and a real MLflow tracking server."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))
SERVER_READY_S = 120.0
RUN_TIMEOUT_S = 300.0

# The smallest pipeline that still registers and gates a model: no GX, DVC or ONNX, one
# quick estimator, and a gate every new version passes (so each run moves the champion).
LEAN_CONFIG = """\
name: churn-demo
data:
  source: data/churn.csv
  target: churned
training:
  models: [{type: logistic_regression}]
validation: {enabled: false}
versioning: {enabled: false}
serving: {onnx: {enabled: false}}
promotion: {min_improvement: -1.0}
"""


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: none of the test process's MLflow/Conveyor state."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CONVEYOR_"))}
    return {**env, "COLUMNS": "200", "MLFLOW_DISABLE_TELEMETRY": "true", **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def conveyor(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion."""
    return subprocess.run(
        [CONVEYOR, *args],
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


@dataclass
class Started:
    """A CLI process running in the background, its output going to files."""

    process: subprocess.Popen[bytes]
    out: Path
    err: Path

    def finish(self) -> tuple[int, str, str]:
        """Wait for it; its exit code, stdout and stderr."""
        code = self.process.wait(timeout=RUN_TIMEOUT_S)
        return code, self.out.read_text(errors="replace"), self.err.read_text(errors="replace")


def start(*args: str, cwd: Path, name: str, env: dict[str, str] | None = None) -> Started:
    """Start the CLI in the background."""
    out, err = cwd / f"{name}.out", cwd / f"{name}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [CONVEYOR, *args], cwd=cwd, env=env or clean_env(), stdout=stdout, stderr=stderr
        )
    return Started(process, out, err)


def lean_project(folder: Path, *, rows: int = 500, seed: int = 0) -> Path:
    """A demo project (seeded churn data) with the lean config; returns the config path."""
    made = conveyor(
        "demo", "--dir", str(folder), "--rows", str(rows), "--seed", str(seed), cwd=folder.parent
    )
    assert made.returncode == 0, made.stderr
    config = folder / "conveyor.yaml"
    config.write_text(LEAN_CONFIG, encoding="utf-8")
    return config


def wait_for(predicate: Any, *, what: str, timeout: float = RUN_TIMEOUT_S) -> None:
    """Poll until ``predicate()`` is true (event-based waits, generous timeout)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def step_status(project: Path, step: str) -> str | None:
    """The status of a step in the newest run record of a project, if any."""
    records = sorted((project / ".conveyor" / "runs").glob("*/record.json"))
    if not records:
        return None
    try:
        record = json.loads(records[-1].read_text(encoding="utf-8"))
    except ValueError:
        return None
    status = record.get("steps", {}).get(step, {}).get("status")
    return None if status is None else str(status)


@dataclass
class MlflowServer:
    """``mlflow server`` on SQLite with proxied artifacts, one worker, no job consumers."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        argv = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"]
        argv += ["--port", str(self.port), "--workers", "1"]
        argv += ["--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}"]
        argv += ["--artifacts-destination", str(self.folder / "artifacts")]
        env = clean_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        log = self.folder / "server.log"
        with log.open("ab") as sink:
            self.process = subprocess.Popen(
                argv, cwd=self.folder, env=env, stdout=sink, stderr=sink, start_new_session=True
            )
        deadline = time.monotonic() + SERVER_READY_S
        while not self._healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"mlflow server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """SIGKILL the server and its workers: a crash, not a shutdown."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[MlflowServer]:
    folder = tmp_path / "tracking-server"
    folder.mkdir()
    server = MlflowServer(folder)
    try:
        yield server
    finally:
        server.kill()
