"""The demo's whole loop: serve the champion, send traffic, drift, retrain, swap.

Every part is the real one, in its own process: ``conveyor serve`` (following the
champion alias, watching drift), the retraining webhook receiver
(``conveyor monitor serve-webhook``, which runs ``conveyor run`` through the normal
validation and promotion gates), and a traffic generator that never pauses. The demo
plays Alertmanager: once the server reports drift, it posts the alert that a Prometheus
rule would fire (``FeatureDrift``, ``retrain="true"``) to the receiver.
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
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conveyor.errors import PipelineError

__all__ = ["DEMO_DRIFT", "LoopResult", "run_demo_loop"]

logger = logging.getLogger(__name__)

DEMO_DRIFT = 0.3
"""Shift of the drifted demo data: detected by the drift monitor (4 of 8 features),
still inside the validation suite's tolerances, so retraining goes through."""
READY_TIMEOUT_S = 120.0
RETRAIN_TIMEOUT_S = 900.0

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
        trigger: the retraining receiver's answer to the alert.
    """

    before: str
    after: str
    drifted_features: list[str]
    answered: dict[str, int]
    failures: list[str]
    trigger: dict[str, Any]


def _records(frame: Any, names: list[str]) -> list[dict[str, Any]]:
    import pandas as pd

    rows = []
    for record in frame[names].to_dict(orient="records"):
        rows.append({k: (None if pd.isna(v) else v) for k, v in record.items()})
    return rows


def _alert(name: str, version: str, features: list[str]) -> dict[str, Any]:
    """The Alertmanager webhook body a ``FeatureDrift`` rule would send."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    labels = {"alertname": "FeatureDrift", "model": name, "version": version, "retrain": "true"}
    return {
        "version": "4",
        "status": "firing",
        "receiver": "conveyor-retrain",
        "groupKey": f'{{}}:{{alertname="FeatureDrift",model="{name}"}}',
        "groupLabels": {"alertname": "FeatureDrift"},
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
        failures, and the receiver's decision.

    Raises:
        PipelineError: a process did not come up, or drift / retraining / the swap did
            not happen in time.
    """
    from conveyor.data.synthetic import make_demo_dataset, write_demo_dataset

    conveyor = str(Path(sys.executable).with_name("conveyor"))
    project = config_path.resolve().parent
    logs = project / ".conveyor" / "demo-loop"
    logs.mkdir(parents=True, exist_ok=True)
    serve_port, hook_port = _free_port(), _free_port()
    token = secrets.token_urlsafe(24)
    env = {**os.environ, "CONVEYOR_ADMIN_TOKEN": token}
    url = f"http://127.0.0.1:{serve_port}"
    serve = [conveyor, "serve", "-c", str(config_path), "--port", str(serve_port)]
    serve += ["--poll-interval", "2", "--drift-interval", "2", "--drain-seconds", "0"]
    hook = [conveyor, "monitor", "serve-webhook", "-c", str(config_path), "--port", str(hook_port)]
    hook += ["--launcher", "local", "--cooldown", "600"]
    with (
        _process(serve, logs / "serve.log", env),
        _process(hook, logs / "webhook.log", env),
    ):
        _wait(lambda: _request(f"{url}/readyz")[0] == 200, READY_TIMEOUT_S, "the server start")
        _wait(
            lambda: _request(f"http://127.0.0.1:{hook_port}/healthz")[0] == 200,
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
            traffic.switch(_records(drifted, inputs))
            say(f"injecting drift ({DEMO_DRIFT}): older customers, higher charges, a new region")
            features = _wait_for_drift(url)
            say(f"drift detected on {', '.join(features)} (conveyor_feature_drifted = 1)")
            _newest_data(project, write_demo_dataset)
            trigger = _send_alert(hook_port, token, _alert(name, before, features))
            say("alert FeatureDrift sent to the receiver: retraining on the newest data ...")

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
        before, after, features, dict(traffic.answered), list(traffic.failures), trigger
    )


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


def _send_alert(port: int, token: str, alert: dict[str, Any]) -> dict[str, Any]:
    """Post the alert to the retraining receiver; its decision (a run must start)."""
    status, _, answer = _request(
        f"http://127.0.0.1:{port}/alerts", alert, headers={"Authorization": f"Bearer {token}"}
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
