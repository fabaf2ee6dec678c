"""`conveyor monitor alerting`: the shipped rules and routing rendered with a project's
timing, as a user runs it, and checked by the real promtool and amtool."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from tests.integration.monitoring.prometheus_stack import RULE_TESTS, run_tool

from conveyor.errors import ConfigError
from conveyor.monitoring.alerting import AlertingFiles, check_alerting

pytestmark = pytest.mark.integration

Cli = Callable[..., subprocess.CompletedProcess[str]]
TIMING = """
alerting:
  scrape_interval: 2s
  evaluation_interval: 2s
  notify_wait: 1s
  pending: {ConveyorFeatureDrift: 10s, ConveyorOnlinePerformanceLow: 0s}
"""


@pytest.fixture(scope="module")
def project(cli: Cli, workdir: Path) -> Path:
    made = cli("demo", "--dir", "alerting-project", "--rows", "200")
    assert made.returncode == 0, made.stderr
    config = workdir / "alerting-project" / "conveyor.yaml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.split("alerting:")[0] + TIMING, encoding="utf-8")
    return config


@pytest.fixture(scope="module")
def rendered(cli: Cli, project: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = project.parent / "alerting"
    done = cli(
        "monitor", "alerting", "-c", str(project), "--out", str(out),
        "--serve", "127.0.0.1:8080", "--serve", "127.0.0.1:8081",
        "--webhook-url", "http://127.0.0.1:9095/alerts", "--pushgateway", "127.0.0.1:9091",
    )  # fmt: skip
    return done, out


def rule_for(folder: Path, alert: str) -> str | None:
    for path in (folder / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == alert:
                    return rule.get("for")
    raise AssertionError(f"no alert {alert} in {folder}")


def test_rendering_succeeds_and_says_it_was_checked(
    rendered: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, _ = rendered
    assert done.returncode == 0, done.stdout + done.stderr
    assert "checked by promtool and amtool" in done.stdout


def test_the_rendered_rules_carry_the_projects_pending_durations(
    rendered: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, out = rendered
    assert (
        rule_for(out, "ConveyorFeatureDrift"),
        rule_for(out, "ConveyorOnlinePerformanceLow"),
    ) == (
        "10s",
        "0s",
    )


def test_alerts_not_named_keep_the_shipped_duration(
    rendered: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, out = rendered
    assert rule_for(out, "ConveyorDatasetDrift") == "15m"


def test_promtool_checks_the_rendered_rules_on_their_own(
    rendered: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, out = rendered
    checked = run_tool("promtool", "check", "rules", *map(str, (out / "rules").glob("*.yml")))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_shipped_rule_tests_hold_for_the_shipped_timing() -> None:
    checked = run_tool("promtool", "test", "rules", *map(str, RULE_TESTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_an_unknown_alert_name_is_one_clear_line(cli: Cli, project: Path, tmp_path: Path) -> None:
    broken = tmp_path / "conveyor.yaml"
    text = project.read_text(encoding="utf-8").replace("ConveyorFeatureDrift:", "ConveyorDrfit:")
    broken.write_text(text.replace("data/churn.csv", str(project.parent / "data/churn.csv")))
    done = cli("monitor", "alerting", "-c", str(broken), "--out", str(tmp_path / "out"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "alerting.pending: no alert named ConveyorDrfit" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_file_promtool_refuses_is_reported_with_its_answer(
    rendered: tuple[subprocess.CompletedProcess[str], Path], tmp_path: Path
) -> None:
    _, out = rendered
    files = AlertingFiles(tmp_path / "copy")
    files.rules.mkdir(parents=True)
    for path in (out / "rules").glob("*.yml"):
        (files.rules / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    files.alertmanager.write_text(out.joinpath("alertmanager.yml").read_text(encoding="utf-8"))
    config = yaml.safe_load(out.joinpath("prometheus.yml").read_text(encoding="utf-8"))
    config["global"]["scrape_interval"] = "soon"
    files.prometheus.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"promtool refused .*prometheus\.yml: .*soon"):
        check_alerting(files)
