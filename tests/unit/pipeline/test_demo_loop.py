"""Who carries the demo's retraining alert: Prometheus and Alertmanager when installed,
the demo itself (and it says so) when not."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from conveyor.config import AlertingConfig
from conveyor.monitoring.alert_stack import AlertStack
from conveyor.pipeline import demo_loop


def chain(tmp_path: Path, said: list[str]) -> AbstractContextManager[AlertStack | None]:
    return demo_loop._alert_chain(
        tmp_path,
        AlertingConfig(),
        serve_port=1,
        hook_url="http://127.0.0.1:2",
        token="t" * 24,
        say=said.append,
    )


def test_without_prometheus_the_demo_stands_in_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no prometheus, alertmanager, promtool, amtool
    said: list[str] = []
    with chain(tmp_path, said) as carried:
        assert carried is None
    assert said == [
        "Prometheus and Alertmanager not found (install: deploy/install-prometheus.sh):"
        " the demo will post the retraining alert itself"
    ]


def test_the_stand_in_alert_is_the_shipped_rules_alert() -> None:
    body = demo_loop._alert("churn-demo", "1", ["age", "region"])
    (alert,) = body["alerts"]
    assert (alert["labels"]["alertname"], alert["labels"]["retrain"], alert["status"]) == (
        "ConveyorFeatureDrift",
        "true",
        "firing",
    )
