"""A trained demo project (real `conveyor run`: MLflow sqlite store, DVC, GX), a CLI runner,
and a real Pushgateway."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.integration.monitoring.prometheus_stack import stop, tool, wait_http
from tests.integration.serving.conftest import free_port

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))

Cli = Callable[..., subprocess.CompletedProcess[str]]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CONVEYOR_"))}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [CONVEYOR, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="package")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("monitoring")


@pytest.fixture(scope="package")
def trained_demo(workdir: Path) -> Path:
    """A demo project trained once: churn-demo v1 is the champion, with its profile."""
    made = _run("demo", "--dir", "demo", "--rows", "2000", cwd=workdir)
    assert made.returncode == 0, made.stderr
    run = _run("run", "-c", "demo/conveyor.yaml", cwd=workdir)
    assert run.returncode == 0, run.stdout + run.stderr
    return workdir / "demo" / "conveyor.yaml"


@pytest.fixture(scope="package")
def cli(workdir: Path) -> Cli:
    """`cli("monitor", "drift", ...)` runs the installed CLI in the package's folder."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return _run(*args, cwd=workdir)

    return run


@contextmanager
def pushgateway_at(folder: Path) -> Iterator[str]:
    """A real Pushgateway (Debian's prometheus-pushgateway) logging into ``folder``; its URL."""
    address = f"127.0.0.1:{free_port()}"
    log = folder / "pushgateway.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [tool("prometheus-pushgateway"), f"--web.listen-address={address}"],
            stdout=sink, stderr=sink,
        )  # fmt: skip
    try:
        wait_http(process, f"http://{address}/-/ready", log)
        yield f"http://{address}"
    finally:
        stop(process)


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    with pushgateway_at(tmp_path) as url:
        yield url
