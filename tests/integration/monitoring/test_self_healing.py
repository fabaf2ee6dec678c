"""The self-healing loop, whole and for real, started by poor online performance.

Ground truth through ``POST /feedback`` -> ``conveyor serve``'s online accuracy -> a real
Prometheus scraping it and evaluating the shipped rules (rendered with the demo project's
short ``alerting:`` timing, checked by promtool and amtool) -> a real Alertmanager routing
``retrain="true"`` -> ``conveyor monitor serve-webhook`` -> ``conveyor run`` on the
newest data -> the promotion gate -> the server follows the champion alias; traffic never
stops and never fails.

Twice: once with a gate the new model passes (it is swapped in), once with a gate it
cannot pass (``promotion.min_improvement: 1.0``): nothing is swapped, and the run's push
to a real Pushgateway makes ``ConveyorChallengerRejected`` fire. Drift starting the same
loop is ``make demo``'s (tests/e2e/test_make_demo.py).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.monitoring.conftest import pushgateway_at
from tests.integration.monitoring.prometheus_stack import WAIT_TIMEOUT_S, stop, wait_http
from tests.integration.serving.conftest import free_port
from tests.traffic import Sample, Traffic

from conveyor.config import load_config
from conveyor.data.synthetic import make_demo_dataset, write_demo_dataset
from conveyor.monitoring.alert_stack import AlertStack, alerting_binaries, run_alert_stack
from conveyor.monitoring.alerting import (
    AlertingTargets,
    check_alerting,
    shipped_deploy_dir,
    write_alerting,
)
from conveyor.registry.store import ModelRegistry

pytestmark = pytest.mark.integration

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))
MODEL = "churn-demo"
RUN_TIMEOUT_S = 600.0
LABELLED_ROWS = 300  # the rule wants at least 200 labelled rows


def wait_until(check: Callable[[], Any], what: str, timeout: float = WAIT_TIMEOUT_S) -> Any:
    """Poll ``check`` until it returns something truthy; return it, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.25)
    pytest.fail(f"{what} did not happen within {timeout:.0f} s")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CONVEYOR_"))}
    return {**env, "CONVEYOR_METRICS_TEXTFILE": "off", **extra}


def conveyor(*args: str, cwd: Path) -> None:
    done = subprocess.run(
        [CONVEYOR, *args], cwd=cwd, env=clean_env(), capture_output=True, text=True,
        timeout=RUN_TIMEOUT_S, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@contextmanager
def process(argv: list[str], log: Path, env: dict[str, str], ready: str) -> Iterator[None]:
    with log.open("wb") as sink:
        started = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        wait_http(started, ready, log)
        yield
    finally:
        stop(started)


@dataclass(frozen=True)
class Healing:
    """What one pass of the loop showed."""

    fired: set[str]  # retraining alerts Prometheus fired on version 1
    run: dict[str, Any]  # the triggered run as the receiver reports it when it ended
    samples: list[Sample]  # every request of the traffic that ran throughout
    served_after: str  # the version the server answers with once the run ended
    registry: ModelRegistry
    alerts: AlertStack
    pushgateway: str

    @property
    def failed(self) -> list[Sample]:
        return [s for s in self.samples if s.failed]


def make_project(folder: Path, min_improvement: float) -> Path:
    """A trained demo project (v1 is the champion) whose gate asks ``min_improvement``."""
    conveyor("demo", "--dir", "demo", "--rows", "2000", cwd=folder)
    config = folder / "demo" / "conveyor.yaml"
    text = config.read_text(encoding="utf-8")
    gate = f"promotion:\n  min_improvement: {min_improvement}\n"
    config.write_text(text.replace("promotion:\n", gate, 1), encoding="utf-8")
    conveyor("run", "-c", str(config), cwd=folder)
    return config


def demo_records(server: str, rows: int, seed: int) -> list[dict[str, Any]]:
    """``rows`` demo rows holding the served model's inputs, as JSON records."""
    inputs = httpx.get(f"{server}/v2/models/{MODEL}", timeout=10).json()["inputs"]
    frame = make_demo_dataset(rows, seed=seed, messy=False)[[i["name"] for i in inputs]]
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records", date_format="iso"))
    return records


def send_wrong_feedback(server: str) -> None:
    """Predictions for LABELLED_ROWS rows, then each one's opposite label as the truth."""
    records = demo_records(server, LABELLED_ROWS, seed=31)
    answer = httpx.post(
        f"{server}/invocations",
        json={"dataframe_records": records},
        headers={"X-Request-Id": "labelled-1"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    predicted = answer.json()["predictions"]
    truth = ["no" if label == "yes" else "yes" for label in predicted]
    feedback = {"feedback": [{"request_id": "labelled-1", "labels": truth}]}
    sent = httpx.post(f"{server}/feedback", json=feedback, timeout=60)
    assert sent.json() == {"matched": ["labelled-1"], "unknown": []}, sent.text


def served_version(server: str) -> str:
    return str(httpx.get(f"{server}/readyz", timeout=10).json()["version"])


def retraining_alerts(alerts: AlertStack) -> set[str]:
    return {
        a["labels"]["alertname"]
        for a in alerts.firing()
        if a["labels"].get("retrain") == "true" and a["labels"].get("version") == "1"
    }


def finished_run(hook: str) -> dict[str, Any] | None:
    last = httpx.get(f"{hook}/healthz", timeout=10).json().get("last_run")
    return last if last and last["state"] != "running" else None


@contextmanager
def healing(folder: Path, *, min_improvement: float) -> Iterator[Healing]:
    """Run the loop once on a fresh project: wrong labels in, until the triggered run ended
    (and, if it promoted, the server swapped); yield what it showed while Prometheus,
    Alertmanager and the Pushgateway still run."""
    config = make_project(folder, min_improvement)
    project = config.parent
    serve_port, hook_port = free_port(), free_port()
    prometheus_port, alertmanager_port = free_port(), free_port()
    server, hook = f"http://127.0.0.1:{serve_port}", f"http://127.0.0.1:{hook_port}"
    token = secrets.token_urlsafe(24)
    token_file = folder / "webhook-token"
    token_file.write_text(token, encoding="utf-8")
    binaries, deploy = alerting_binaries(), shipped_deploy_dir()
    assert binaries is not None and deploy is not None, "install deploy/install-prometheus.sh"
    serve = [CONVEYOR, "serve", "-c", str(config), "--port", str(serve_port)]
    serve += ["--poll-interval", "1", "--drain-seconds", "0"]
    webhook = [CONVEYOR, "monitor", "serve-webhook", "-c", str(config), "--port", str(hook_port)]
    webhook += ["--cooldown", "600"]
    registry = ModelRegistry(f"sqlite:///{project / '.conveyor' / 'mlflow.db'}")
    with ExitStack() as stack:
        gateway = stack.enter_context(pushgateway_at(folder))
        targets = AlertingTargets(
            serve=(f"127.0.0.1:{serve_port}",),
            webhook_url=f"{hook}/alerts",
            alertmanager=f"127.0.0.1:{alertmanager_port}",
            pushgateway=gateway.removeprefix("http://"),
            token_file=token_file,
        )
        alerting = load_config(config).alerting
        files = write_alerting(folder / "alerting", alerting, targets, deploy=deploy)
        check_alerting(files)
        hook_env = clean_env(CONVEYOR_WEBHOOK_TOKEN=token, CONVEYOR_PUSHGATEWAY_URL=gateway)
        stack.enter_context(process(serve, folder / "serve.log", clean_env(), f"{server}/readyz"))
        stack.enter_context(process(webhook, folder / "hook.log", hook_env, f"{hook}/healthz"))
        alerts = stack.enter_context(
            run_alert_stack(
                files,
                binaries,
                prometheus_port=prometheus_port,
                alertmanager_port=alertmanager_port,
            )
        )
        records = demo_records(server, 40, seed=5)
        with Traffic("127.0.0.1", serve_port, records, clients=2, rate=10) as traffic:
            # the newest labelled export, which the triggered run trains on
            write_demo_dataset(project / "data" / "churn.csv", n_rows=2000, seed=11)
            send_wrong_feedback(server)
            fired = wait_until(lambda: retraining_alerts(alerts), "a retraining alert")
            run = wait_until(lambda: finished_run(hook), "the triggered run", RUN_TIMEOUT_S)
            champion = registry.get_alias(MODEL, "champion")
            assert champion is not None
            wait_until(lambda: served_version(server) == champion.version, "the server following")
            time.sleep(3.0)  # three alias polls: traffic on what is served after the run
            served_after = served_version(server)
        yield Healing(fired, run, traffic.samples, served_after, registry, alerts, gateway)


@pytest.fixture(scope="module")
def healed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Healing]:
    with healing(tmp_path_factory.mktemp("healed"), min_improvement=-1.0) as outcome:
        yield outcome


@pytest.fixture(scope="module")
def rejected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Healing]:
    with healing(tmp_path_factory.mktemp("rejected"), min_improvement=1.0) as outcome:
        yield outcome


# -- a model the gate passes: swapped in ----------------------------------------
def test_poor_online_accuracy_fires_the_retraining_alert(healed: Healing) -> None:
    assert "ConveyorOnlinePerformanceLow" in healed.fired


def test_alertmanager_starts_one_run_that_succeeds(healed: Healing) -> None:
    assert (healed.run["state"], healed.run["exit_code"]) == ("succeeded", 0)


def test_the_retrained_model_is_the_champion(healed: Healing) -> None:
    champion = healed.registry.get_alias(MODEL, "champion")
    assert champion is not None and champion.version == "2"


def test_the_server_swaps_to_the_new_champion(healed: Healing) -> None:
    assert healed.served_after == "2"


def test_both_versions_answered_the_traffic(healed: Healing) -> None:
    assert {s.version for s in healed.samples if not s.failed} == {"1", "2"}


def test_no_request_failed_while_the_loop_ran(healed: Healing) -> None:
    assert len(healed.samples) > 100
    assert [(s.status, s.error) for s in healed.failed] == []


def test_a_passed_gate_raises_no_rejection(healed: Healing) -> None:
    gate = healed.alerts.query("conveyor_pipeline_gate_passed")
    assert [(s["metric"]["pipeline"], s["value"][1]) for s in gate] == [(MODEL, "1")]
    assert "ConveyorChallengerRejected" not in {
        a["labels"]["alertname"] for a in healed.alerts.firing()
    }


# -- a model the gate refuses: nothing moves, an alert says so -----------------------
def test_a_refused_model_stays_the_challenger(rejected: Healing) -> None:
    champion = rejected.registry.get_alias(MODEL, "champion")
    challenger = rejected.registry.get_alias(MODEL, "challenger")
    assert (champion and champion.version, challenger and challenger.version) == ("1", "2")


def test_a_refused_model_is_not_served(rejected: Healing) -> None:
    assert rejected.served_after == "1"
    assert {s.version for s in rejected.samples if not s.failed} == {"1"}


def test_the_refusing_run_itself_succeeds(rejected: Healing) -> None:
    assert (rejected.run["state"], rejected.run["exit_code"]) == ("succeeded", 0)


def test_no_request_failed_while_the_gate_refused(rejected: Healing) -> None:
    assert len(rejected.samples) > 100
    assert [(s.status, s.error) for s in rejected.failed] == []


def test_prometheus_fires_challenger_rejected(rejected: Healing) -> None:
    def rejection() -> list[dict[str, Any]]:
        firing = rejected.alerts.firing()
        return [a for a in firing if a["labels"]["alertname"] == "ConveyorChallengerRejected"]

    (alert,) = wait_until(rejection, "ConveyorChallengerRejected firing")
    assert alert["labels"]["pipeline"] == MODEL


def test_alertmanager_routes_the_rejection_to_people_not_to_retraining(rejected: Healing) -> None:
    def held() -> list[dict[str, Any]]:
        notified = rejected.alerts.notified()
        return [a for a in notified if a["labels"]["alertname"] == "ConveyorChallengerRejected"]

    (alert,) = wait_until(held, "Alertmanager holding ConveyorChallengerRejected")
    assert [r["name"] for r in alert["receivers"]] == ["team"]
