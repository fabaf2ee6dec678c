"""Real Prometheus and Alertmanager processes (Debian binaries) for the tests of deploy/."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.integration.serving.conftest import free_port

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
START_TIMEOUT_S = 60.0
EVALUATION_INTERVAL_S = 1  # scrapes and rule evaluations, in prometheus()
WAIT_TIMEOUT_S = 60.0  # generous: a loaded 2-core machine running two pytest workers
INSTALL_HINT = (
    "install the Debian packages prometheus and prometheus-alertmanager"
    " (deploy/install-prometheus.sh)"
)


def tool(name: str) -> str:
    """The path of a Prometheus tool, or a test failure that says how to install it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; {INSTALL_HINT}")
    return path


def run_tool(name: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``name args`` and return its completed process (output captured as text)."""
    argv = [tool(name), *args]
    return subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of deploy/prometheus/rules (with its file name under ``file``)."""
    return [r for r in all_rules() if "alert" in r]


def all_rules() -> list[dict[str, Any]]:
    """Every recording and alerting rule of deploy/prometheus/rules."""
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            rules += [{**rule, "file": path.name} for rule in group["rules"]]
    return rules


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then kill after 10 s."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_http(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Wait until ``url`` answers 200, failing with the log when the process exits first."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{log.name}: exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} did not answer within {START_TIMEOUT_S} s")


@dataclass(frozen=True)
class Prometheus:
    """A running Prometheus and its HTTP API."""

    url: str

    def query(self, expr: str) -> dict[str, Any]:
        """The JSON answer of an instant query (any status; the caller checks it)."""
        answer = httpx.post(f"{self.url}/api/v1/query", data={"query": expr}, timeout=10.0)
        body: dict[str, Any] = answer.json()
        return body

    def series(self, expr: str) -> list[dict[str, Any]]:
        """The result of an instant query that must succeed."""
        body = self.query(expr)
        assert body["status"] == "success", f"{expr}: {body.get('error')}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(self, expr: str, timeout: float = WAIT_TIMEOUT_S) -> list[dict[str, Any]]:
        """Poll until ``expr`` returns series; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if result := self.series(expr):
                return result
            time.sleep(0.25)
        pytest.fail(f"{expr} returned no series within {timeout} s")

    def last_evaluation(self, group: str) -> datetime:
        """When the rule group ``group`` was last evaluated (the epoch before its first)."""
        answer = httpx.get(f"{self.url}/api/v1/rules", timeout=10.0).json()
        (found,) = [g for g in answer["data"]["groups"] if g["name"] == group]
        return parse_rfc3339(found["lastEvaluation"])

    def wait_for_evaluation(
        self, group: str, after: datetime, timeout: float = WAIT_TIMEOUT_S
    ) -> datetime:
        """Poll until the rule group ``group`` was evaluated on the data of a moment later
        than ``after``; return when that evaluation started.

        ``lastEvaluation`` is when an evaluation started; it evaluates at the interval's tick
        before that, less than one interval earlier: a start more than one interval after
        ``after`` means a tick after it.
        """
        since = after + timedelta(seconds=EVALUATION_INTERVAL_S)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (evaluated := self.last_evaluation(group)) > since:
                return evaluated
            time.sleep(0.25)
        pytest.fail(f"rule group {group} was not evaluated after {after} within {timeout} s")


def parse_rfc3339(text: str) -> datetime:
    """Prometheus's timestamps (nanoseconds, ``Z``) as an aware datetime (microseconds)."""
    match = re.fullmatch(r"(.+?T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    assert match, f"not an RFC 3339 timestamp: {text}"
    whole, fraction, zone = match.groups()
    micro = f".{(fraction or '0')[:6]:0<6}"
    return datetime.fromisoformat(whole + micro + ("+00:00" if zone == "Z" else zone))


@contextmanager
def prometheus(folder: Path, targets: dict[str, list[str]]) -> Iterator[Prometheus]:
    """Prometheus scraping ``targets`` (job -> host:port) every second, with the rules of
    deploy/prometheus/rules evaluated every second."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {
            "scrape_interval": f"{EVALUATION_INTERVAL_S}s",
            "evaluation_interval": f"{EVALUATION_INTERVAL_S}s",
        },
        "rule_files": [str(path) for path in RULE_FILES],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": hosts}]}
            for job, hosts in targets.items()
        ],
    }
    config_file = folder / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    check = run_tool("promtool", "check", "config", str(config_file))
    assert check.returncode == 0, check.stdout + check.stderr
    url = f"http://127.0.0.1:{free_port()}"
    argv = [
        tool("prometheus"),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address={url.removeprefix('http://')}",
        "--storage.tsdb.retention.time=1h",
    ]
    log = folder / "prometheus.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, cwd=folder, stdout=sink, stderr=sink)
    try:
        wait_http(process, f"{url}/-/ready", log)
        yield Prometheus(url)
    finally:
        stop(process)


@dataclass
class WebhookSink:
    """An HTTP server recording the path, JSON body and Authorization header of every POST."""

    url: str
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)

    def on(self, path: str) -> list[tuple[dict[str, Any], str | None]]:
        """The bodies POSTed to ``path`` so far, each with its Authorization header."""
        calls = list(zip(self.received, self.authorizations, strict=False))
        return [(body, auth) for (where, body), auth in calls if where == path]

    def wait(
        self, path: str, count: int, timeout: float = WAIT_TIMEOUT_S
    ) -> list[tuple[dict[str, Any], str | None]]:
        """Wait until ``count`` bodies arrived on ``path``; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.on(path)) < count:
            time.sleep(0.1)
        arrived = self.on(path)
        assert len(arrived) >= count, f"{len(arrived)} webhook calls on {path}, {count} expected"
        return arrived


@contextmanager
def webhook_sink() -> Iterator[WebhookSink]:
    """A local webhook receiver (path and JSON body of every POST), stopped at exit."""
    received: list[tuple[str, dict[str, Any]]] = []
    authorizations: list[str | None] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:  # both lists grow together: call i is received[i], authorizations[i]
                authorizations.append(self.headers.get("Authorization"))
                received.append((self.path, json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        yield WebhookSink(url, received, authorizations)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def alertmanager(folder: Path, config: dict[str, Any]) -> Iterator[str]:
    """Alertmanager (clustering off) with ``config``; yields its URL."""
    folder.mkdir(parents=True, exist_ok=True)
    config_file = folder / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    url = f"http://127.0.0.1:{free_port()}"
    argv = [
        tool("prometheus-alertmanager"),
        f"--config.file={config_file}",
        f"--storage.path={folder / 'data'}",
        f"--web.listen-address={url.removeprefix('http://')}",
        "--cluster.listen-address=",
    ]
    log = folder / "alertmanager.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, cwd=folder, stdout=sink, stderr=sink)
    try:
        wait_http(process, f"{url}/-/ready", log)
        yield url
    finally:
        stop(process)


GRAFANA_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
GRAFANA_BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m"}


def substitute(expr: str, values: dict[str, str]) -> str:
    """A dashboard expression with Grafana's built-ins and template variables replaced
    (a variable missing from ``values`` becomes the regex ``.*``)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return GRAFANA_BUILTINS.get(name) or values.get(name, ".*")

    return GRAFANA_VARIABLE.sub(value, expr)


def label_values_query(query: str) -> str:
    """Grafana's ``label_values(selector, label)`` as the PromQL that answers it."""
    match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
    assert match, f"not a label_values() query: {query}"
    return f"group by ({match.group(2)}) ({match.group(1)})"


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """The panels of a dashboard, rows' nested panels included, rows themselves excluded."""
    found = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            found += panel.get("panels", [])
        else:
            found.append(panel)
    return found


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expression) of every panel target and query variable."""
    queries = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in panels(board):
            queries += [(path.name, panel["title"], t["expr"]) for t in panel["targets"]]
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                query = label_values_query(variable["query"]["query"])
                queries.append((path.name, f"${variable['name']}", query))
    return queries
