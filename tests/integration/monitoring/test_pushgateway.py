"""The pipeline's push to a real Pushgateway (Debian's prometheus-pushgateway), and a real
Prometheus scraping it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.monitoring.prometheus_stack import prometheus
from tests.unit.monitoring.test_pipeline_metrics import failed_validation_record, succeeded_record

from conveyor.monitoring.pipeline_metrics import publish_pipeline_metrics
from conveyor.settings import Settings

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def pipeline_samples(url: str) -> Samples:
    """The conveyor_pipeline_* samples the Pushgateway exposes, keyed by (name, labels)."""
    text = httpx.get(f"{url}/metrics", timeout=5.0).text
    return {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "instance"))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("conveyor_pipeline_")
    }


def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    grouping = {"job": "conveyor_pipeline", "pipeline": "churn-demo"}
    return name, tuple(sorted({**grouping, **labels}.items()))


def push(url: str, record: dict[str, object], state_dir: Path) -> dict[str, object]:
    settings = Settings(pushgateway_url=url, metrics_textfile="off")
    section = publish_pipeline_metrics(record, state_dir=state_dir, settings=settings)
    assert section is not None
    return section


def test_a_run_is_pushed_under_its_pipeline(pushgateway: str, tmp_path: Path) -> None:
    assert push(pushgateway, succeeded_record(), tmp_path)["push"] == {
        "url": pushgateway,
        "ok": True,
    }
    got = pipeline_samples(pushgateway)
    assert got[key("conveyor_pipeline_last_run_success")] == 1.0
    assert got[key("conveyor_pipeline_registered_version")] == 3.0
    assert got[key("conveyor_pipeline_model_metric", metric="roc_auc")] == 0.85


def test_a_failed_run_replaces_the_group_without_stale_gauges(
    pushgateway: str, tmp_path: Path
) -> None:
    push(pushgateway, succeeded_record(), tmp_path)
    push(pushgateway, failed_validation_record(), tmp_path)
    got = pipeline_samples(pushgateway)
    assert got[key("conveyor_pipeline_last_run_success")] == 0.0
    assert got[key("conveyor_pipeline_validation_passed")] == 0.0
    assert not any(name == "conveyor_pipeline_model_metric" for name, _ in got)
    assert not any(name == "conveyor_pipeline_registered_version" for name, _ in got)


def test_prometheus_scrapes_the_pushed_run(pushgateway: str, tmp_path: Path) -> None:
    push(pushgateway, succeeded_record(), tmp_path)
    target = pushgateway.removeprefix("http://")
    with prometheus(tmp_path / "prometheus", {"conveyor-pushgateway": [target]}) as server:
        [series] = server.wait_for('conveyor_pipeline_last_run_success{pipeline="churn-demo"}')
    assert series["value"][1] == "1"
