"""The shipped Prometheus rules and Alertmanager routing, rendered with a project's timing.

``deploy/prometheus/rules`` and ``deploy/alertmanager/alertmanager.yml`` are the
production files (drift must hold 15 minutes before it fires, Alertmanager gathers
retraining alerts for a minute). A project's ``alerting:`` settings
(``AlertingConfig``) change only the timing: scrape and evaluation intervals, each
alert's ``for:``, the retraining route's ``group_wait``; expressions, labels and routes
stay the shipped ones. ``write_alerting`` writes a folder Prometheus and Alertmanager
run from as is; ``check_alerting`` has ``promtool`` and ``amtool`` check it.

Example:
    >>> rules = {"drift.yml": {"groups": [{"name": "g", "rules": [
    ...     {"alert": "Drift", "expr": "x == 1", "for": "15m"}]}]}}
    >>> render_rules(rules, {"Drift": "5s"})["drift.yml"]["groups"][0]["rules"][0]["for"]
    '5s'
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conveyor.config import AlertingConfig
from conveyor.errors import ConfigError

__all__ = [
    "RETRAIN_RECEIVER",
    "AlertingFiles",
    "AlertingTargets",
    "alert_names",
    "check_alerting",
    "load_rules",
    "render_alertmanager",
    "render_prometheus",
    "render_rules",
    "shipped_deploy_dir",
    "spoken",
    "write_alerting",
]

RETRAIN_RECEIVER = "conveyor-retrain"
"""The Alertmanager receiver that posts ``retrain="true"`` alerts to the trigger."""
_TIMEOUT_S = 60


def shipped_deploy_dir() -> Path | None:
    """The checkout's ``deploy/`` folder, or ``None`` in an installed package without it."""
    folder = Path(__file__).resolve().parents[3] / "deploy"
    return folder if (folder / "prometheus" / "rules").is_dir() else None


def load_rules(folder: Path) -> dict[str, dict[str, Any]]:
    """Every rule file of ``folder`` (``*.yml``), by file name.

    Raises:
        ConfigError: the folder holds no rule file.
    """
    paths = sorted(folder.glob("*.yml"))
    if not paths:
        raise ConfigError(f"{folder}: no Prometheus rule files (*.yml)")
    return {path.name: yaml.safe_load(path.read_text(encoding="utf-8")) for path in paths}


def alert_names(files: Mapping[str, dict[str, Any]]) -> list[str]:
    """The alerting rules' names, in file order."""
    return [
        rule["alert"]
        for content in files.values()
        for group in content["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def render_rules(
    files: Mapping[str, dict[str, Any]], pending: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """The rule files with each named alert's ``for:`` set to ``pending[name]``.

    Args:
        files: rule files by name, as ``load_rules`` reads them (left unchanged).
        pending: alert name -> duration (``alerting.pending``).

    Returns:
        New rule files; alerts not named keep their ``for:``.

    Raises:
        ConfigError: ``pending`` names an alert the files do not define.
    """
    unknown = sorted(set(pending) - set(alert_names(files)))
    if unknown:
        raise ConfigError(
            f"alerting.pending: no alert named {', '.join(unknown)} in the rule files"
            f" (alerts: {', '.join(alert_names(files))})"
        )
    rendered = copy.deepcopy(dict(files))
    for content in rendered.values():
        for group in content["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") in pending:
                    _set_pending(rule, pending[rule["alert"]])
    return rendered


_UNITS = {"ms": "millisecond", "s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week"}


def spoken(duration: str) -> str:
    """A one-unit Prometheus duration in words (``15m`` -> ``15 minutes``), else as is.

    Example:
        >>> spoken("15m"), spoken("1h"), spoken("1h30m")
        ('15 minutes', '1 hour', '1h30m')
    """
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d|w)", duration)
    if match is None:
        return duration
    count, unit = match.groups()
    return f"{count} {_UNITS[unit]}{'' if count == '1' else 's'}"


def _set_pending(rule: dict[str, Any], duration: str) -> None:
    """Set the rule's ``for:``; annotations that said "for <old duration>" say the new one."""
    old = rule.get("for")
    rule["for"] = duration
    if old is None:
        return
    before, after = f"for {spoken(str(old))}", f"for {spoken(duration)}"
    annotations = rule.get("annotations", {})
    for key, text in annotations.items():
        annotations[key] = text.replace(before, after)


@dataclass(frozen=True)
class AlertingTargets:
    """Where the rendered configuration points.

    Attributes:
        serve: ``host:port`` of each ``conveyor serve`` to scrape (job ``conveyor-serve``).
        webhook_url: the retraining trigger's ``POST /alerts`` URL.
        alertmanager: ``host:port`` Prometheus sends its alerts to.
        pushgateway: ``host:port`` of a Pushgateway holding pipeline runs, if any.
        token_file: file holding the trigger's bearer token, if it wants one.
    """

    serve: tuple[str, ...]
    webhook_url: str
    alertmanager: str
    pushgateway: str | None = None
    token_file: Path | None = None


def render_prometheus(config: AlertingConfig, targets: AlertingTargets) -> dict[str, Any]:
    """Prometheus' configuration: the rules in ``rules/``, the targets, the timing."""
    scrape: list[dict[str, Any]] = [
        {"job_name": "conveyor-serve", "static_configs": [{"targets": list(targets.serve)}]}
    ]
    if targets.pushgateway:
        scrape.append(
            {
                "job_name": "conveyor-pushgateway",
                "honor_labels": True,
                "static_configs": [{"targets": [targets.pushgateway]}],
                "metric_relabel_configs": [
                    {
                        "source_labels": ["__name__"],
                        "action": "keep",
                        "regex": "conveyor_pipeline_.+",
                    }
                ],
            }
        )
    return {
        "global": {
            "scrape_interval": config.scrape_interval,
            "evaluation_interval": config.evaluation_interval,
            "external_labels": {"system": "conveyor"},
        },
        "rule_files": ["rules/*.yml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [targets.alertmanager]}]}]},
        "scrape_configs": scrape,
    }


def render_alertmanager(
    shipped: Mapping[str, Any], config: AlertingConfig, targets: AlertingTargets
) -> dict[str, Any]:
    """The shipped routing with the trigger's URL, token file and ``notify_wait``.

    Raises:
        ConfigError: the shipped file has no ``conveyor-retrain`` receiver or route.
    """
    rendered = copy.deepcopy(dict(shipped))
    receivers = [r for r in rendered.get("receivers", []) if r.get("name") == RETRAIN_RECEIVER]
    routes = [
        r for r in rendered["route"].get("routes", []) if r.get("receiver") == RETRAIN_RECEIVER
    ]
    if len(receivers) != 1 or len(routes) != 1:
        raise ConfigError(f"alertmanager.yml: expected one {RETRAIN_RECEIVER} receiver and route")
    (webhook,) = receivers[0]["webhook_configs"]
    webhook["url"] = targets.webhook_url
    if targets.token_file is None:
        webhook.pop("http_config", None)
    else:
        webhook["http_config"] = {
            "authorization": {"type": "Bearer", "credentials_file": str(targets.token_file)}
        }
    routes[0]["group_wait"] = config.notify_wait
    return rendered


@dataclass(frozen=True)
class AlertingFiles:
    """A rendered folder: ``prometheus.yml``, ``rules/*.yml``, ``alertmanager.yml``."""

    folder: Path

    @property
    def prometheus(self) -> Path:
        return self.folder / "prometheus.yml"

    @property
    def rules(self) -> Path:
        return self.folder / "rules"

    @property
    def alertmanager(self) -> Path:
        return self.folder / "alertmanager.yml"


def write_alerting(
    folder: Path, config: AlertingConfig, targets: AlertingTargets, *, deploy: Path
) -> AlertingFiles:
    """Render ``deploy``'s rules and routing with ``config`` and ``targets`` into ``folder``.

    Raises:
        ConfigError: ``deploy`` lacks the rule files or routing, or ``config`` names an
            unknown alert.
    """
    routing = deploy / "alertmanager" / "alertmanager.yml"
    if not routing.is_file():
        raise ConfigError(f"{routing}: the shipped Alertmanager configuration is missing")
    rules = render_rules(load_rules(deploy / "prometheus" / "rules"), config.pending)
    files = AlertingFiles(folder)
    files.rules.mkdir(parents=True, exist_ok=True)
    for name, content in rules.items():
        (files.rules / name).write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    prometheus = render_prometheus(config, targets)
    files.prometheus.write_text(yaml.safe_dump(prometheus, sort_keys=False), encoding="utf-8")
    shipped = yaml.safe_load(routing.read_text(encoding="utf-8"))
    manager = render_alertmanager(shipped, config, targets)
    files.alertmanager.write_text(yaml.safe_dump(manager, sort_keys=False), encoding="utf-8")
    return files


def check_alerting(files: AlertingFiles) -> None:
    """``promtool check config`` (rules included) and ``amtool check-config`` on ``files``.

    Raises:
        ConfigError: a tool is not installed, or it refused a file (its output quoted).
    """
    checks = (
        ("promtool", "check", "config", str(files.prometheus)),
        ("amtool", "check-config", str(files.alertmanager)),
    )
    for tool, *args in checks:
        path = shutil.which(tool)
        if path is None:
            raise ConfigError(
                f"{tool} is not installed (Debian: prometheus, prometheus-alertmanager;"
                " deploy/install-prometheus.sh)"
            )
        done = subprocess.run(
            [path, *args], capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
        )
        if done.returncode != 0:
            output = " ".join((done.stdout + done.stderr).split())  # one line
            raise ConfigError(f"{tool} refused {args[-1]}: {output}")
