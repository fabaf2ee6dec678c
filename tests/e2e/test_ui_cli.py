"""`conveyor ui` serves the MLflow UI on the project's embedded store."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.e2e

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def test_ui_shows_the_registered_model(cli: Cli, tmp_path: Path) -> None:
    project = tmp_path / "demo"
    assert cli("demo", "--dir", str(project), "--rows", "800").returncode == 0
    config = str(project / "conveyor.yaml")
    assert cli("run", "-c", config).returncode == 0
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CONVEYOR_"))}
    proc = subprocess.Popen(
        [CONVEYOR, "ui", "-c", config, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        api = f"http://127.0.0.1:{port}/api/2.0/mlflow/registered-models/get?name=churn-demo"
        deadline, answer = time.monotonic() + 90, None
        while time.monotonic() < deadline and answer is None:
            try:
                answer = get(api)
            except OSError:
                time.sleep(0.5)
        assert answer is not None, "the MLflow UI never answered"
        status, body = answer
        assert status == 200
        model = json.loads(body)["registered_model"]
        assert {"alias": "champion", "version": "1"} in model["aliases"]
        assert get(f"http://127.0.0.1:{port}/")[0] == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
