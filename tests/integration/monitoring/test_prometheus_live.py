"""A real Prometheus (Debian binary) scraping a real `conveyor serve` under generated traffic,
with the rules of deploy/prometheus loaded: every dashboard query and every rule evaluates,
the service metrics return series, and promtool accepts the server's /metrics."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.monitoring.prometheus_stack import (
    Prometheus,
    all_rules,
    dashboard_queries,
    prometheus,
    run_tool,
    substitute,
)
from tests.integration.serving.conftest import (
    FEATURES,
    MODEL,
    launch,
    make_table,
    register_model,
    rows_payload,
)

from conveyor.registry.store import ModelRegistry

pytestmark = pytest.mark.integration

SERVICE_METRICS = (
    "conveyor_requests_total",
    "conveyor_request_duration_seconds_bucket",
    "conveyor_model_info",
    "conveyor_model_swaps_total",
    "conveyor_requests_in_flight",
)
NAME = re.compile(r"\b(?:up|conveyor_\w+|model:\w+:\w+)\b")
RECORDED = frozenset(rule["record"] for rule in all_rules() if "record" in rule)
# What dashboards and rules read that this server does not export: no drift profile (the
# model is registered without one), no feedback, no shadow model, no regressor, and no
# pipeline run (`conveyor run` writes those). Queries on them can only evaluate here;
# test_prometheus_drift and the rule unit tests feed them.
UNSERVED = frozenset(
    {
        "conveyor_drift_detected",
        "conveyor_drift_share",
        "conveyor_drift_window_bytes",
        "conveyor_drift_window_rows",
        "conveyor_feature_drift",
        "conveyor_feature_drifted",
        "conveyor_feedback_total",
        "conveyor_online_labelled_rows",
        "conveyor_online_metric",
        "conveyor_pipeline_data_rows",
        "conveyor_pipeline_gate_passed",
        "conveyor_pipeline_last_run_success",
        "conveyor_pipeline_last_run_timestamp_seconds",
        "conveyor_pipeline_model_metric",
        "conveyor_pipeline_promoted",
        "conveyor_pipeline_registered_version",
        "conveyor_pipeline_step_cached",
        "conveyor_pipeline_step_duration_seconds",
        "conveyor_pipeline_validation_passed",
        "conveyor_prediction_value_count",
        "conveyor_prediction_value_sum",
        "conveyor_shadow_rows_total",
    }
)
ALERTS = {rule["alert"]: rule["expr"] for rule in all_rules() if "alert" in rule}
# Alerts whose every input this server exports: on a healthy server none may hold.
SERVED_ALERTS = (
    "ConveyorModelNotReady",
    "ConveyorModelSwapFailed",
    "ConveyorModelRefused",
    "ConveyorNoTraffic",
    "ConveyorErrorBudgetBurnFast",
    "ConveyorErrorBudgetBurnSlow",
    "ConveyorLatencyBudgetBurnFast",
    "ConveyorLatencyBudgetBurnSlow",
)
# Alerts on UNSERVED metrics (drift, online metrics, pipeline runs): they only evaluate here.
UNSERVED_ALERTS = (
    "ConveyorFeatureDrift",
    "ConveyorDatasetDrift",
    "ConveyorOnlinePerformanceLow",
    "ConveyorPipelineRunFailed",
    "ConveyorChallengerRejected",
    "ConveyorPipelineStale",
)
DASHBOARD_QUERIES = [(b, p, substitute(e, {})) for b, p, e in dashboard_queries()]
SERVED_QUERIES = [q for q in DASHBOARD_QUERIES if not set(NAME.findall(q[2])) & UNSERVED]
UNSERVED_QUERIES = [q for q in DASHBOARD_QUERIES if set(NAME.findall(q[2])) & UNSERVED]


@dataclass(frozen=True)
class Stack:
    """The server, its exported sample names, and Prometheus scraping it."""

    server: str
    exported: frozenset[str]
    prometheus: Prometheus


def send_traffic(url: str) -> None:
    """Predictions on both protocols, an unknown category, a bad request (400), a health check."""
    rows = make_table(n=20, seed=3)[FEATURES]
    v2 = [
        {"name": "age", "shape": [len(rows)], "datatype": "FP64", "data": rows["age"].tolist()},
        {"name": "hours", "shape": [len(rows)], "datatype": "FP64", "data": rows["hours"].tolist()},
        {"name": "job", "shape": [len(rows)], "datatype": "BYTES", "data": rows["job"].tolist()},
    ]
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for n in (1, 5, 40, 1, 3):
            assert client.post("/invocations", json=rows_payload(n)).status_code == 200
        infer = client.post(f"/v2/models/{MODEL}/infer", json={"inputs": v2})
        assert infer.status_code == 200, infer.text
        unknown = {"dataframe_split": {"columns": FEATURES, "data": [[41.0, 38.0, "astronaut"]]}}
        assert client.post("/invocations", json=unknown).status_code == 200
        # An unknown field: the MLflow protocol answers 400 (serving/protocols/mlflow.py).
        assert client.post("/invocations", json={"nonsense": 1}).status_code == 400
        assert client.get("/readyz").status_code == 200


def exported_names(url: str) -> frozenset[str]:
    text = httpx.get(f"{url}/metrics", timeout=5.0).text
    families = text_string_to_metric_families(text)
    return frozenset(s.name for family in families for s in family.samples)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("prometheus-live")
    registry = ModelRegistry(f"sqlite:///{folder / 'mlflow.db'}")
    register_model(registry, make_table(), folder)
    options = ("--poll-interval", "0", "--drain-seconds", "0")
    model_uri = f"models:/{MODEL}@champion"
    with launch(registry.tracking_uri, model_uri, folder, *options) as (_, server, _):
        # Warm-up before the first scrape: rates start from the first scraped sample, so a
        # slow first request (lazy imports on a loaded machine) counts in no latency ratio.
        send_traffic(server)
        target = server.removeprefix("http://")
        with prometheus(folder / "prometheus", {"conveyor-serve": [target]}) as prom:
            prom.wait_for('up{job="conveyor-serve"} == 1')
            send_traffic(server)
            prom.wait_for('conveyor_requests_total{route="/invocations"}')
            send_traffic(server)  # again once Prometheus saw the series, so rates see it
            prom.wait_for('increase(conveyor_requests_total{route="/invocations"}[1m]) > 0')
            prom.wait_for("model:conveyor_requests_errors:ratio_rate5m")
            yield Stack(server, exported_names(server) | RECORDED | {"up"}, prom)


def test_prometheus_loads_and_evaluates_every_rule(stack: Stack) -> None:
    answer = httpx.get(f"{stack.prometheus.url}/api/v1/rules", timeout=5.0).json()
    loaded = [rule for group in answer["data"]["groups"] for rule in group["rules"]]
    assert len(loaded) == len(all_rules())
    failing = {r["name"]: r.get("lastError") for r in loaded if r["health"] != "ok"}
    assert failing == {}


def test_the_unserved_metrics_are_exactly_those_this_server_does_not_export(
    stack: Stack,
) -> None:
    read = {name for _, _, query in DASHBOARD_QUERIES for name in NAME.findall(query)}
    read |= {name for expr in ALERTS.values() for name in NAME.findall(expr)}
    assert sorted(read - stack.exported) == sorted(UNSERVED)


def test_the_alert_lists_cover_every_alert_once() -> None:
    assert sorted(SERVED_ALERTS + UNSERVED_ALERTS) == sorted(ALERTS)


@pytest.mark.parametrize(
    "rule", [r for r in all_rules() if "record" in r], ids=lambda r: r["record"]
)
def test_recording_rule_returns_series_from_the_real_server(
    stack: Stack, rule: dict[str, Any]
) -> None:
    assert stack.prometheus.series(rule["expr"]), (
        f"{rule['record']} is empty although traffic was served"
    )


@pytest.mark.parametrize("alert", SERVED_ALERTS)
def test_a_healthy_server_raises_no_alert(stack: Stack, alert: str) -> None:
    expr = ALERTS[alert]
    # Its inputs are exported: an empty answer means "not firing", not "no data".
    assert set(NAME.findall(expr)) <= stack.exported - UNSERVED
    assert stack.prometheus.series(expr) == []


@pytest.mark.parametrize("alert", UNSERVED_ALERTS)
def test_alert_on_unserved_metrics_evaluates(stack: Stack, alert: str) -> None:
    expr = ALERTS[alert]
    assert set(NAME.findall(expr)) & UNSERVED
    assert stack.prometheus.query(expr)["status"] == "success"


def test_not_ready_expression_holds_when_the_server_is_gone(stack: Stack) -> None:
    (rule,) = [r for r in all_rules() if r.get("alert") == "ConveyorModelNotReady"]
    scraped = stack.prometheus.series('up{job="conveyor-serve"}')
    assert [s["value"][1] for s in scraped] == ["1"]
    # the same expression on a job nothing scrapes: the absent() branch answers
    missing = stack.prometheus.series(rule["expr"].replace("conveyor-serve", "conveyor-gone"))
    assert [s["metric"] for s in missing] == [{"job": "conveyor-gone"}]


@pytest.mark.parametrize(("board", "panel", "query"), SERVED_QUERIES, ids=lambda v: str(v)[:60])
def test_dashboard_query_returns_series(stack: Stack, board: str, panel: str, query: str) -> None:
    assert set(NAME.findall(query)) <= stack.exported
    assert stack.prometheus.series(query), f"{board} / {panel}: {query} returned no series"


@pytest.mark.parametrize(("board", "panel", "query"), UNSERVED_QUERIES, ids=lambda v: str(v)[:60])
def test_dashboard_query_on_unserved_metrics_evaluates(
    stack: Stack, board: str, panel: str, query: str
) -> None:
    answer = stack.prometheus.query(query)
    assert answer["status"] == "success", f"{board} / {panel}: {query}: {answer.get('error')}"


@pytest.mark.parametrize("metric", SERVICE_METRICS)
def test_service_metrics_reach_prometheus(stack: Stack, metric: str) -> None:
    series = stack.prometheus.series(f'{metric}{{job="conveyor-serve"}}')
    assert series, metric


def test_model_variable_lists_the_served_model(stack: Stack) -> None:
    names = stack.prometheus.series("group by (name) (conveyor_model_info)")
    assert [s["metric"]["name"] for s in names] == [MODEL]


def test_promtool_accepts_the_servers_metrics(stack: Stack) -> None:
    text = httpx.get(f"{stack.server}/metrics", timeout=5.0).text
    checked = run_tool("promtool", "check", "metrics", stdin=text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
