"""Rendering the shipped rules and routing with a project's timing (pure: no tools run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor.config import AlertingConfig, ConveyorConfig
from conveyor.errors import ConfigError
from conveyor.monitoring.alerting import (
    AlertingTargets,
    load_rules,
    render_alertmanager,
    render_prometheus,
    render_rules,
    shipped_deploy_dir,
)

DEPLOY = shipped_deploy_dir()
assert DEPLOY is not None, "the tests run from a checkout with deploy/"
SHIPPED_RULES = load_rules(DEPLOY / "prometheus" / "rules")
SHIPPED_ROUTING = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
TARGETS = AlertingTargets(
    serve=("127.0.0.1:8080", "127.0.0.1:8081"),
    webhook_url="http://127.0.0.1:9095/alerts",
    alertmanager="127.0.0.1:9093",
)


def rule(files: dict[str, Any], alert: str) -> dict[str, Any]:
    (found,) = [
        r
        for content in files.values()
        for group in content["groups"]
        for r in group["rules"]
        if r.get("alert") == alert
    ]
    return found


def test_no_pending_setting_leaves_the_shipped_rules_as_they_are() -> None:
    assert render_rules(SHIPPED_RULES, {}) == SHIPPED_RULES


def test_a_pending_setting_becomes_the_alerts_for() -> None:
    rendered = render_rules(SHIPPED_RULES, {"ConveyorFeatureDrift": "5s"})
    assert rule(rendered, "ConveyorFeatureDrift")["for"] == "5s"


def test_a_pending_setting_changes_no_other_alert() -> None:
    rendered = render_rules(SHIPPED_RULES, {"ConveyorFeatureDrift": "5s"})
    rule(rendered, "ConveyorFeatureDrift").update(rule(SHIPPED_RULES, "ConveyorFeatureDrift"))
    assert rendered == SHIPPED_RULES


def test_the_description_tells_the_rendered_duration() -> None:
    rendered = render_rules(SHIPPED_RULES, {"ConveyorFeatureDrift": "5s"})
    description = rule(rendered, "ConveyorFeatureDrift")["annotations"]["description"]
    assert "for 5 seconds" in description and "15 minutes" not in description


def test_rendering_leaves_the_shipped_rules_unchanged() -> None:
    before = yaml.safe_dump(SHIPPED_RULES)
    render_rules(SHIPPED_RULES, {"ConveyorFeatureDrift": "5s"})
    assert yaml.safe_dump(SHIPPED_RULES) == before


def test_an_unknown_alert_name_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"alerting\.pending: no alert named ConveyorDrfit"):
        render_rules(SHIPPED_RULES, {"ConveyorDrfit": "5s"})


@pytest.mark.parametrize("duration", ["5 minutes", "1.5s", "1m1h", "", "5"])
def test_a_duration_prometheus_would_not_read_is_refused_at_load(duration: str) -> None:
    raw = {"name": "p", "data": {"source": "t.csv", "target": "y"}}
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        ConveyorConfig.model_validate({**raw, "alerting": {"scrape_interval": duration}})


def test_a_pending_duration_prometheus_would_not_read_names_the_alert() -> None:
    with pytest.raises(ValueError, match="ConveyorFeatureDrift: '5 minutes' is not"):
        AlertingConfig.model_validate({"pending": {"ConveyorFeatureDrift": "5 minutes"}})


def test_prometheus_gets_the_intervals() -> None:
    config = AlertingConfig(scrape_interval="2s", evaluation_interval="3s")
    assert render_prometheus(config, TARGETS)["global"] == {
        "scrape_interval": "2s",
        "evaluation_interval": "3s",
        "external_labels": {"system": "conveyor"},
    }


def test_prometheus_scrapes_every_server_as_conveyor_serve() -> None:
    jobs = render_prometheus(AlertingConfig(), TARGETS)["scrape_configs"]
    assert [(j["job_name"], j["static_configs"]) for j in jobs] == [
        ("conveyor-serve", [{"targets": ["127.0.0.1:8080", "127.0.0.1:8081"]}])
    ]


def test_prometheus_scrapes_the_pushgateway_with_its_labels_when_given() -> None:
    targets = AlertingTargets(**{**TARGETS.__dict__, "pushgateway": "127.0.0.1:9091"})
    jobs = render_prometheus(AlertingConfig(), targets)["scrape_configs"]
    (gateway,) = [j for j in jobs if j["job_name"] == "conveyor-pushgateway"]
    assert (gateway["honor_labels"], gateway["static_configs"]) == (
        True,
        [{"targets": ["127.0.0.1:9091"]}],
    )


def test_prometheus_alerts_the_given_alertmanager() -> None:
    alerting = render_prometheus(AlertingConfig(), TARGETS)["alerting"]
    assert alerting == {"alertmanagers": [{"static_configs": [{"targets": ["127.0.0.1:9093"]}]}]}


def retrain_route(config: dict[str, Any]) -> dict[str, Any]:
    (route,) = [r for r in config["route"]["routes"] if r["receiver"] == "conveyor-retrain"]
    return route


def retrain_webhook(config: dict[str, Any]) -> dict[str, Any]:
    (receiver,) = [r for r in config["receivers"] if r["name"] == "conveyor-retrain"]
    (webhook,) = receiver["webhook_configs"]
    return dict(webhook)


def test_alertmanager_waits_notify_wait_before_telling_the_trigger() -> None:
    rendered = render_alertmanager(SHIPPED_ROUTING, AlertingConfig(notify_wait="1s"), TARGETS)
    assert retrain_route(rendered)["group_wait"] == "1s"


def test_alertmanager_routes_retraining_alerts_as_shipped() -> None:
    rendered = render_alertmanager(SHIPPED_ROUTING, AlertingConfig(), TARGETS)
    assert retrain_route(rendered) == retrain_route(SHIPPED_ROUTING)


def test_alertmanager_posts_to_the_given_trigger_with_its_token_file() -> None:
    targets = AlertingTargets(**{**TARGETS.__dict__, "token_file": Path("/run/token")})
    webhook = retrain_webhook(render_alertmanager(SHIPPED_ROUTING, AlertingConfig(), targets))
    assert (webhook["url"], webhook["http_config"]) == (
        "http://127.0.0.1:9095/alerts",
        {"authorization": {"type": "Bearer", "credentials_file": "/run/token"}},
    )


def test_alertmanager_sends_no_authorization_without_a_token_file() -> None:
    webhook = retrain_webhook(render_alertmanager(SHIPPED_ROUTING, AlertingConfig(), TARGETS))
    assert "http_config" not in webhook


def test_a_routing_without_the_retraining_receiver_is_refused() -> None:
    routing = {**SHIPPED_ROUTING, "receivers": [{"name": "team"}]}
    with pytest.raises(ConfigError, match="conveyor-retrain"):
        render_alertmanager(routing, AlertingConfig(), TARGETS)
