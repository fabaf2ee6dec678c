"""A local Prometheus and Alertmanager, run from a folder ``write_alerting`` rendered.

For the demo's loop and for trying the rules on one machine: the Debian binaries
(``prometheus``, ``prometheus-alertmanager``, or ``alertmanager`` elsewhere), listening
on loopback, their data in the folder, stopped (SIGTERM, then SIGKILL) on exit.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.errors import ConfigError, ServiceUnavailableError
from conveyor.monitoring.alerting import AlertingFiles

__all__ = ["AlertStack", "AlertingBinaries", "alerting_binaries", "run_alert_stack"]

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class AlertingBinaries:
    """Paths of the two servers."""

    prometheus: str
    alertmanager: str


def alerting_binaries() -> AlertingBinaries | None:
    """The installed Prometheus and Alertmanager (with their check tools), or ``None``."""
    prometheus = shutil.which("prometheus")
    alertmanager = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if not (prometheus and alertmanager and shutil.which("promtool") and shutil.which("amtool")):
        return None
    return AlertingBinaries(prometheus, alertmanager)


@dataclass(frozen=True)
class AlertStack:
    """The running pair: base URLs of their HTTP APIs."""

    prometheus: str
    alertmanager: str

    def firing(self) -> list[dict[str, Any]]:
        """Prometheus' firing alerts (``GET /api/v1/alerts``)."""
        answer = _get_json(f"{self.prometheus}/api/v1/alerts")
        return [a for a in answer["data"]["alerts"] if a.get("state") == "firing"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The series of an instant PromQL query (``GET /api/v1/query``)."""
        url = f"{self.prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        result: list[dict[str, Any]] = _get_json(url)["data"]["result"]
        return result

    def notified(self) -> list[dict[str, Any]]:
        """The alerts Alertmanager holds (``GET /api/v2/alerts``)."""
        answer: list[dict[str, Any]] = _get_json(f"{self.alertmanager}/api/v2/alerts")
        return answer


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


@contextmanager
def _server(argv: list[str], log: Path, ready_url: str) -> Iterator[None]:
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-1500:]
                raise ServiceUnavailableError(
                    f"{Path(argv[0]).name} exited with {process.returncode}: {tail}"
                )
            try:
                with urllib.request.urlopen(ready_url, timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise ServiceUnavailableError(
                    f"{ready_url} did not answer within {START_TIMEOUT_S:.0f} s (log: {log})"
                )
            time.sleep(0.2)
        yield
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def run_alert_stack(
    files: AlertingFiles,
    binaries: AlertingBinaries,
    *,
    prometheus_port: int,
    alertmanager_port: int,
) -> Iterator[AlertStack]:
    """Start Alertmanager, then Prometheus, from ``files``; stop both on exit.

    The ports must be those the rendered ``prometheus.yml`` sends its alerts to
    (``AlertingTargets.alertmanager``).

    Raises:
        ConfigError: the folder was not rendered.
        ServiceUnavailableError: a server exited or did not turn ready in time.
    """
    if not files.prometheus.is_file() or not files.alertmanager.is_file():
        raise ConfigError(f"{files.folder}: no rendered prometheus.yml and alertmanager.yml")
    manager = f"127.0.0.1:{alertmanager_port}"
    prometheus = f"127.0.0.1:{prometheus_port}"
    with ExitStack() as stack:
        stack.enter_context(
            _server(
                [
                    binaries.alertmanager,
                    f"--config.file={files.alertmanager}",
                    f"--storage.path={files.folder / 'alertmanager-data'}",
                    f"--web.listen-address={manager}",
                    "--cluster.listen-address=",
                ],
                files.folder / "alertmanager.log",
                f"http://{manager}/-/ready",
            )
        )
        stack.enter_context(
            _server(
                [
                    binaries.prometheus,
                    f"--config.file={files.prometheus}",
                    f"--storage.tsdb.path={files.folder / 'prometheus-data'}",
                    f"--web.listen-address={prometheus}",
                    "--storage.tsdb.retention.time=1d",
                ],
                files.folder / "prometheus.log",
                f"http://{prometheus}/-/ready",
            )
        )
        yield AlertStack(f"http://{prometheus}", f"http://{manager}")
