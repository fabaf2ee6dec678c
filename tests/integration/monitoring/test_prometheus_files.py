"""deploy/ checked by the real tools: promtool (config, rules, rule unit tests), amtool and
a real Alertmanager delivering to a webhook, and the Grafana files' structure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.integration.monitoring.prometheus_stack import (
    ALERTMANAGER_CONFIG,
    DASHBOARDS,
    DATASOURCES,
    PROMETHEUS_DIR,
    RULE_FILES,
    RULE_TESTS,
    alert_rules,
    alertmanager,
    panels,
    run_tool,
    webhook_sink,
)

pytestmark = pytest.mark.integration

RETRAIN_ALERTS = {"ConveyorFeatureDrift", "ConveyorDatasetDrift", "ConveyorOnlinePerformanceLow"}
EXPECTED_ALERTS = RETRAIN_ALERTS | {
    "ConveyorErrorBudgetBurnFast",
    "ConveyorErrorBudgetBurnSlow",
    "ConveyorLatencyBudgetBurnFast",
    "ConveyorLatencyBudgetBurnSlow",
    "ConveyorModelNotReady",
    "ConveyorModelRefused",
    "ConveyorModelSwapFailed",
    "ConveyorNoTraffic",
    "ConveyorPipelineRunFailed",
    "ConveyorChallengerRejected",
    "ConveyorPipelineStale",
}


def test_promtool_accepts_the_prometheus_config_and_its_rules() -> None:
    checked = run_tool("promtool", "check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(RULE_FILES)} rule files found" in checked.stdout
    rules = run_tool("promtool", "check", "rules", *map(str, RULE_FILES))
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    tested = run_tool("promtool", "test", "rules", *map(str, RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert tested.stdout.count("SUCCESS") == len(RULE_TESTS), tested.stdout


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names == EXPECTED_ALERTS
    assert names - firing == set(), "alerts without a firing test"
    assert names - quiet == set(), "alerts without a not-firing test"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_alert_has_severity_and_explains_itself(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"page", "ticket", "warning"}
    assert {"summary", "description", "runbook"} <= set(rule["annotations"])
    expected = "true" if rule["alert"] in RETRAIN_ALERTS else None
    assert rule["labels"].get("retrain") == expected


def test_amtool_accepts_the_alertmanager_config() -> None:
    checked = run_tool("amtool", "check-config", str(ALERTMANAGER_CONFIG))
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ("alertname=ConveyorFeatureDrift retrain=true severity=warning", "conveyor-retrain,team"),
        ("alertname=ConveyorOnlinePerformanceLow retrain=true", "conveyor-retrain,team"),
        ("alertname=ConveyorErrorBudgetBurnFast severity=page", "team-page"),
        ("alertname=ConveyorNoTraffic severity=warning", "team"),
    ],
)
def test_alertmanager_routes_retraining_alerts_to_the_trigger(labels: str, receivers: str) -> None:
    config = f"--config.file={ALERTMANAGER_CONFIG}"
    routed = run_tool("amtool", "config", "routes", "test", config, *labels.split())
    assert routed.returncode == 0, routed.stderr
    assert routed.stdout.strip() == receivers


def test_alertmanager_delivers_retraining_alerts_to_the_webhook(tmp_path: Path) -> None:
    """The real routing tree, with the webhook URLs pointed here and the waits shortened:
    the people's receiver ("team") gets its own path, so its deliveries show when both
    alerts went through the tree."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    (retrain,) = [r for r in config["receivers"] if r["name"] == "conveyor-retrain"]
    (team,) = [r for r in config["receivers"] if r["name"] == "team"]
    assert retrain["webhook_configs"][0]["url"] == "http://conveyor-monitor:9095/alerts"
    for route in [config["route"], *config["route"]["routes"]]:
        route.update({"group_wait": "0s", "group_interval": "1s"})
    token = tmp_path / "webhook-token"
    token.write_text("a-webhook-token-of-32-characters", encoding="utf-8")
    webhook = retrain["webhook_configs"][0]
    assert webhook["http_config"]["authorization"]["type"] == "Bearer"
    webhook["http_config"]["authorization"]["credentials_file"] = str(token)
    with webhook_sink() as sink:
        webhook["url"] = f"{sink.url}/alerts"
        team["webhook_configs"] = [{"url": f"{sink.url}/team"}]
        with alertmanager(tmp_path, config) as url:
            alerts = [
                {"labels": {"alertname": name, "model": "churn", "version": "3", **extra}}
                for name, extra in [
                    ("ConveyorFeatureDrift", {"retrain": "true", "feature": "age"}),
                    ("ConveyorNoTraffic", {"severity": "warning"}),
                ]
            ]
            assert httpx.post(f"{url}/api/v2/alerts", json=alerts, timeout=5.0).status_code == 200
            # People get both alerts, one notification per alert name (group_by alertname):
            # once both arrived, the tree routed both, a wrong retraining route included.
            people = sink.wait("/team", 2)
            sink.wait("/alerts", 1)
            delivered = sink.on("/alerts")
    assert sorted(a["labels"]["alertname"] for b, _ in people for a in b["alerts"]) == [
        "ConveyorFeatureDrift",
        "ConveyorNoTraffic",
    ]
    ((body, authorization),) = delivered
    assert authorization == "Bearer a-webhook-token-of-32-characters"
    assert (body["version"], body["status"]) == ("4", "firing")
    assert body["receiver"] == "conveyor-retrain"
    (alert,) = body["alerts"]
    assert alert["labels"]["alertname"] == "ConveyorFeatureDrift"
    assert alert["labels"]["feature"] == "age"


def test_dashboards_query_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))["datasources"]
    (datasource,) = provisioned
    assert datasource["type"] == "prometheus"
    titles = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text(encoding="utf-8"))
        titles.add(board["title"])
        assert {v["name"] for v in board["templating"]["list"]} & {"model", "pipeline"}, path.name
        for panel in panels(board):
            assert panel["targets"], f"{path.name}: panel {panel['title']!r} has no query"
            for source in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
                assert source == {"type": "prometheus", "uid": datasource["uid"]}, panel["title"]
            assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]
    assert titles == {
        "Conveyor / Service overview",
        "Conveyor / Model and drift",
        "Conveyor / A/B comparison",
        "Conveyor / Pipeline runs",
    }


def test_dashboard_provider_points_at_a_folder_of_the_dashboards() -> None:
    provider_file = DATASOURCES.parents[1] / "dashboards" / "conveyor.yml"
    (provider,) = yaml.safe_load(provider_file.read_text(encoding="utf-8"))["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].endswith("/conveyor")
    uids = [json.loads(p.read_text(encoding="utf-8"))["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids) == 4
