"""`monitor watch`'s poll loop against a real Prometheus evaluating real alert rules."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from tests.integration.monitoring.prometheus_stack import run_tool, stop, tool, wait_http
from tests.integration.serving.conftest import free_port
from tests.unit.monitoring.test_launchers import CountingLauncher

from conveyor.monitoring.trigger import RetrainTrigger, TriggerStateFile
from conveyor.monitoring.watch import fetch_prometheus_alerts, watch

pytestmark = pytest.mark.integration

RULES = {
    "groups": [
        {
            "name": "watch-test",
            "interval": "1s",
            "rules": [
                {"alert": "DriftForRetraining", "expr": "vector(1)",
                 "labels": {"retrain": "true", "severity": "ticket"}},
                {"alert": "StillPending", "expr": "vector(1)", "for": "1h",
                 "labels": {"retrain": "true"}},
                {"alert": "PageNotRetrain", "expr": "vector(1)", "labels": {"severity": "page"}},
            ],
        }
    ]
}  # fmt: skip
FIRING_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus evaluating RULES every second, both firing alerts already firing."""
    folder = tmp_path_factory.mktemp("watch-prometheus")
    (folder / "rules.yml").write_text(yaml.safe_dump(RULES), encoding="utf-8")
    check = run_tool("promtool", "check", "rules", str(folder / "rules.yml"))
    assert check.returncode == 0, check.stdout + check.stderr
    config = {"global": {"evaluation_interval": "1s"}, "rule_files": [str(folder / "rules.yml")]}
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    url = f"http://127.0.0.1:{free_port()}"
    log = folder / "prometheus.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [tool("prometheus"), f"--config.file={folder / 'prometheus.yml'}",
             f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address={url.removeprefix('http://')}"],
            cwd=folder, stdout=sink, stderr=sink,
        )  # fmt: skip
    try:
        wait_http(process, f"{url}/-/ready", log)
        wait_firing(url, {"DriftForRetraining", "PageNotRetrain"})
        yield url
    finally:
        stop(process)


def wait_firing(url: str, names: set[str]) -> None:
    deadline = time.monotonic() + FIRING_TIMEOUT_S
    while time.monotonic() < deadline:
        alerts = httpx.get(f"{url}/api/v1/alerts", timeout=5.0).json()["data"]["alerts"]
        if names <= {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}:
            return
        time.sleep(0.25)
    pytest.fail(f"{sorted(names)} were not firing within {FIRING_TIMEOUT_S} s")


def test_only_firing_alerts_are_fetched(prometheus_url: str) -> None:
    alerts = fetch_prometheus_alerts(prometheus_url)
    assert sorted(a.name for a in alerts) == ["DriftForRetraining", "PageNotRetrain"]


def test_one_incident_starts_one_run_across_polls(prometheus_url: str, tmp_path: Path) -> None:
    launcher = CountingLauncher()
    trigger = RetrainTrigger(launcher, TriggerStateFile(tmp_path / "state.json"), cooldown=0)
    outcomes = watch(trigger, prometheus_url, interval=0.5, ticks=3)
    assert [o.decision.result for o in outcomes] == ["started", "deduplicated", "deduplicated"]


def test_the_run_is_started_for_the_retraining_alert_only(
    prometheus_url: str, tmp_path: Path
) -> None:
    [drift] = [a for a in fetch_prometheus_alerts(prometheus_url) if a.name == "DriftForRetraining"]
    launcher = CountingLauncher()
    trigger = RetrainTrigger(launcher, TriggerStateFile(tmp_path / "state.json"), cooldown=0)
    watch(trigger, prometheus_url, interval=0.5, ticks=2)
    assert launcher.launched == [[drift.incident]]
