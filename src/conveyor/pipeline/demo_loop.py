"""The demo's whole loop: serve the champion, send traffic, drift, retrain, swap.

Every part is the real one, in its own process: ``conveyor serve`` (following the
champion alias, watching drift), a Prometheus scraping it and evaluating the shipped
rules (rendered with the project's ``alerting:`` timing), an Alertmanager routing
``retrain="true"`` alerts to the retraining webhook receiver (``conveyor monitor
serve-webhook``, which runs ``conveyor run`` on the newest data through the normal
validation and promotion gates), and a traffic generator that never pauses.

Where Prometheus and Alertmanager are not installed (or the shipped rules are not
there, as in an installed package without ``deploy/``), the demo plays their part: once
the server reports drift, it posts the alert a ``ConveyorFeatureDrift`` rule would fire
to the receiver itself, and says so.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from conveyor.errors import PipelineError

if TYPE_CHECKING:
    from conveyor.config import AlertingConfig
    from conveyor.monitoring.alert_stack import AlertStack

__all__ = ["DEMO_DRIFT", "LoopResult", "run_demo_loop"]

logger = logging.getLogger(__name__)

DEMO_DRIFT = 0.3
"""Shift of the drifted demo data: detected by the drift monitor (4 of 8 features),
still inside the validation suite's tolerances, so retraining goes through."""
READY_TIMEOUT_S = 120.0
RETRAIN_TIMEOUT_S = 900.0
ALERT_TIMEOUT_S = 180.0

Say = Callable[[str], None]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request(
    url: str, body: Any = None, *, headers: dict[str, str] | None = None, timeout: float = 10.0
) -> tuple[int, dict[str, str], Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    request.add_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise PipelineError(f"demo: {what} did not happen within {timeout:.0f} s")


@contextmanager
def _process(argv: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class Traffic:
    """Sends one-row predictions without pause from a background thread."""

    url: str
    rows: list[dict[str, Any]]
    answered: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _next: int = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._send, daemon=True, name="demo-traffic")
        self._thread.start()

    def switch(self, rows: list[dict[str, Any]]) -> None:
        self.rows, self._next = rows, 0

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _send(self) -> None:
        while not self._stop.is_set():
            rows = self.rows
            batch = [rows[(self._next + i) % len(rows)] for i in range(20)]
            self._next += 20
            try:
                status, headers, body = _request(
                    f"{self.url}/invocations", {"dataframe_records": batch}
                )
            except OSError as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
                continue
            if status != 200:
                self.failures.append(f"{status}: {str(body)[:200]}")
            else:
                self.answered[headers.get("x-model-version", "?")] += 1


@dataclass(frozen=True)
class LoopResult:
    """What the loop showed.

    Attributes:
        before: the version serving at the start.
        after: the version serving at the end.
        drifted_features: what the server's drift monitor flagged.
        answered: requests answered, by version.
        failures: failed requests (the demo's claim is that there are none).
        trigger: the retraining receiver's answer to the alert (stand-in), or its health
            answer once the run started (Alertmanager).
        chain: who told the receiver: ``alertmanager`` (Prometheus rules firing through a
            real Alertmanager) or ``stand-in`` (the demo posted the alert itself).
        alerts: the retraining alerts Prometheus fired (empty with the stand-in).
    """

    before: str
    after: str
    drifted_features: list[str]
    answered: dict[str, int]
    failures: list[str]
    trigger: dict[str, Any]
    chain: Literal["alertmanager", "stand-in"] = "stand-in"
    alerts: list[str] = field(default_factory=list)


def _records(frame: Any, names: list[str]) -> list[dict[str, Any]]:
    import pandas as pd

    rows = []
    for record in frame[names].to_dict(orient="records"):
        rows.append({k: (None if pd.isna(v) else v) for k, v in record.items()})
    return rows


def _alert(name: str, version: str, features: list[str]) -> dict[str, Any]:
    """The Alertmanager webhook body a ``ConveyorFeatureDrift`` rule would send."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    labels = {
        "alertname": "ConveyorFeatureDrift",
        "model": name,
        "version": version,
        "retrain": "true",
    }
    return {
        "version": "4",
        "status": "firing",
        "receiver": "conveyor-retrain",
        "groupKey": f'{{}}:{{alertname="ConveyorFeatureDrift",model="{name}"}}',
        "groupLabels": {"alertname": "ConveyorFeatureDrift"},
        "commonLabels": labels,
        "commonAnnotations": {"summary": f"features drifted: {', '.join(features)}"},
        "externalURL": "http://demo",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"features drifted: {', '.join(features)}"},
                "startsAt": now,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://demo",
                "fingerprint": secrets.token_hex(8),
            }
        ],
    }


def run_demo_loop(config_path: Path, *, say: Say, seconds: float = 8.0) -> LoopResult:
    """Serve, send traffic, inject drift, retrain through the gates, swap; return what it saw.

    Args:
        config_path: the demo project's config (already trained once: a champion exists).
        say: prints one line of progress.
        seconds: how long each phase of traffic runs before the next step.

    Returns:
        The versions before and after, the drifted features, the traffic's answers and
        failures, the receiver's decision, and who carried the alert.

    Raises:
        PipelineError: a process did not come up, or drift / the alert / retraining / the
            swap did not happen in time.
    """
    from conveyor.config import load_config
    from conveyor.data.synthetic import make_demo_dataset, write_demo_dataset

    conveyor = str(Path(sys.executable).with_name("conveyor"))
    project = config_path.resolve().parent
    logs = project / ".conveyor" / "demo-loop"
    logs.mkdir(parents=True, exist_ok=True)
    serve_port, hook_port = _free_port(), _free_port()
    token = secrets.token_urlsafe(24)
    env = {**os.environ, "CONVEYOR_ADMIN_TOKEN": token}
    url, hook_url = f"http://127.0.0.1:{serve_port}", f"http://127.0.0.1:{hook_port}"
    serve = [conveyor, "serve", "-c", str(config_path), "--port", str(serve_port)]
    serve += ["--poll-interval", "2", "--drift-interval", "2", "--drain-seconds", "0"]
    hook = [conveyor, "monitor", "serve-webhook", "-c", str(config_path), "--port", str(hook_port)]
    hook += ["--launcher", "local", "--cooldown", "600"]
    alerting = load_config(config_path).alerting
    with (
        _process(serve, logs / "serve.log", env),
        _process(hook, logs / "webhook.log", env),
        _alert_chain(
            logs, alerting, serve_port=serve_port, hook_url=hook_url, token=token, say=say
        ) as chain,
    ):
        _wait(lambda: _request(f"{url}/readyz")[0] == 200, READY_TIMEOUT_S, "the server start")
        _wait(
            lambda: _request(f"{hook_url}/healthz")[0] == 200,
            READY_TIMEOUT_S,
            "the retraining receiver start",
        )
        ready = _request(f"{url}/readyz")[2]
        name, before = str(ready["model"]), str(ready["version"])
        inputs = [i["name"] for i in _request(f"{url}/v2/models/{name}")[2]["inputs"]]
        say(f"serving {name} v{before} on {url} (drift: {url}/monitoring, metrics: {url}/metrics)")
        clean = _records(make_demo_dataset(4000, seed=101, messy=False), inputs)
        traffic = Traffic(url, clean)
        traffic.start()
        try:
            time.sleep(seconds)
            say(f"clean traffic: {sum(traffic.answered.values())} requests, no drift expected")
            drifted = make_demo_dataset(4000, seed=102, drift=DEMO_DRIFT, messy=False)
            _newest_data(project, write_demo_dataset)
            traffic.switch(_records(drifted, inputs))
            say(
                f"injecting drift ({DEMO_DRIFT}): older customers, higher charges, a new region;"
                " the newest data export has the same shift"
            )
            features = _wait_for_drift(url)
            say(f"drift detected on {', '.join(features)} (conveyor_feature_drifted = 1)")
            trigger, fired = _carry_alert(
                chain, hook_url, token=token, name=name, version=before, features=features, say=say
            )

            def swapped() -> bool:
                return str(_request(f"{url}/readyz")[2].get("version")) != before

            _wait(swapped, RETRAIN_TIMEOUT_S, "retraining and the swap to the new champion")
            after = str(_request(f"{url}/readyz")[2]["version"])
            say(f"new champion v{after} swapped in while traffic kept flowing")
            time.sleep(2.0)
        finally:
            traffic.stop()
    say(f"requests answered by version: {dict(traffic.answered)}; failed: {len(traffic.failures)}")
    return LoopResult(
        before,
        after,
        features,
        dict(traffic.answered),
        list(traffic.failures),
        trigger,
        "stand-in" if chain is None else "alertmanager",
        fired,
    )


def _alert_chain(
    logs: Path, alerting: AlertingConfig, *, serve_port: int, hook_url: str, token: str, say: Say
) -> AbstractContextManager[AlertStack | None]:
    """Prometheus and Alertmanager for the loop (a context yielding their ``AlertStack``),
    or a context yielding ``None`` where they or the shipped rules are not there."""
    from conveyor.monitoring.alert_stack import alerting_binaries, run_alert_stack
    from conveyor.monitoring.alerting import (
        AlertingTargets,
        check_alerting,
        shipped_deploy_dir,
        write_alerting,
    )

    binaries, deploy = alerting_binaries(), shipped_deploy_dir()
    if binaries is None or deploy is None:
        missing = "Prometheus and Alertmanager" if binaries is None else "the shipped rules"
        say(
            f"{missing} not found (install: deploy/install-prometheus.sh): the demo will post"
            " the retraining alert itself"
        )
        return nullcontext(None)
    token_file = logs / "webhook-token"
    token_file.write_text(token, encoding="utf-8")
    token_file.chmod(0o600)
    prometheus_port, alertmanager_port = _free_port(), _free_port()
    targets = AlertingTargets(
        serve=(f"127.0.0.1:{serve_port}",),
        webhook_url=f"{hook_url}/alerts",
        alertmanager=f"127.0.0.1:{alertmanager_port}",
        token_file=token_file,
    )
    shutil.rmtree(logs / "alerting", ignore_errors=True)
    files = write_alerting(logs / "alerting", alerting, targets, deploy=deploy)
    check_alerting(files)
    pending = alerting.pending.get("ConveyorFeatureDrift", "15m")
    say(
        f"Prometheus on http://127.0.0.1:{prometheus_port} (scrapes every"
        f" {alerting.scrape_interval}, ConveyorFeatureDrift fires after {pending}), Alertmanager"
        f' on http://127.0.0.1:{alertmanager_port} (retrain="true" -> {targets.webhook_url})'
    )
    return run_alert_stack(
        files, binaries, prometheus_port=prometheus_port, alertmanager_port=alertmanager_port
    )


def _carry_alert(
    chain: AlertStack | None,
    hook_url: str,
    *,
    token: str,
    name: str,
    version: str,
    features: list[str],
    say: Say,
) -> tuple[dict[str, Any], list[str]]:
    """Get the drift to the retraining receiver: through Prometheus and Alertmanager, or
    posted by the demo itself; the receiver's answer and the alerts Prometheus fired."""
    if chain is None:
        trigger = _send_alert(hook_url, token, _alert(name, version, features))
        say(
            "alert ConveyorFeatureDrift posted to the receiver by the demo itself"
            " (stand-in for Alertmanager): retraining on the newest data ..."
        )
        return trigger, []
    fired = _wait_for_alerts(chain, name, version)
    say(f'Prometheus fired {", ".join(fired)} (retrain="true") to Alertmanager')
    trigger = _wait_for_trigger(hook_url)
    say(
        "Alertmanager notified the retraining receiver: run started"
        " (retraining on the newest data) ..."
    )
    return trigger, fired


def _wait_for_alerts(chain: AlertStack, name: str, version: str) -> list[str]:
    """Wait until Prometheus fires a retraining alert on the served version; their names."""
    fired: list[str] = []

    def firing() -> bool:
        for alert in chain.firing():
            labels = alert["labels"]
            ours = labels.get("model") == name and labels.get("version") == version
            if ours and labels.get("retrain") == "true":
                fired.append(labels["alertname"])
        return bool(fired)

    _wait(firing, ALERT_TIMEOUT_S, "a retraining alert from Prometheus")
    return sorted(set(fired))


def _wait_for_trigger(hook_url: str) -> dict[str, Any]:
    """Wait until Alertmanager's notification started a run; the receiver's health answer."""
    answer: dict[str, Any] = {}

    def started() -> bool:
        answer.update(_request(f"{hook_url}/healthz")[2])
        return bool(answer.get("last_run"))

    _wait(started, ALERT_TIMEOUT_S, "Alertmanager's notification to start a run")
    return answer


def _wait_for_drift(url: str) -> list[str]:
    """Wait until the server's drift monitor flags the dataset; the drifted features."""
    features: list[str] = []

    def detected() -> bool:
        for version in _request(f"{url}/monitoring")[2]["versions"]:
            drift = version.get("drift") or {}
            if drift.get("drift_detected"):
                features.extend(drift["drifted_features"])
                return True
        return False

    _wait(detected, 120.0, "drift detection")
    return features


def _send_alert(hook_url: str, token: str, alert: dict[str, Any]) -> dict[str, Any]:
    """Post the alert to the retraining receiver; its decision (a run must start)."""
    status, _, answer = _request(
        f"{hook_url}/alerts", alert, headers={"Authorization": f"Bearer {token}"}
    )
    if status != 200 or not answer.get("triggered"):
        raise PipelineError(f"demo: the retraining receiver did not start a run: {answer}")
    return dict(answer)


def _newest_data(project: Path, write: Callable[..., Any]) -> None:
    """Replace the project's data with the newest (drifted) batch, as a daily export would."""
    source = project / "data" / "churn.csv"
    with tempfile.TemporaryDirectory() as folder:
        fresh = Path(folder) / "churn.csv"
        write(fresh, n_rows=20000, seed=7, drift=DEMO_DRIFT)
        shutil.copyfile(fresh, source)
