"""Soak: a bounded run of steady traffic, hot swaps, feedback and chaos on a served fleet.

    python -m benchmarks.soak [--minutes 10] [--rate 10] [--no-write] [--render-only]

Not a test and not in CI: one long run whose measures only mean something over time.
A real ``mlflow server`` (SQLite, proxied artifacts) holds two signed versions of a
LightGBM pipeline (ONNX export and training profile, as the register step stores them).
``deploy/rollout/rollout.py up`` starts three ``conveyor serve`` replicas following
``models:/soak@champion`` (alias polled every ``POLL_S``, drift evaluated every
``DRIFT_S`` against the profile) behind HAProxy. For ``--minutes``:

- steady traffic through HAProxy (``tests/traffic.py``: keep-alive clients, paced, rows
  varied over ``BODIES`` row sets);
- ``--feedback-share`` of the answered predictions get their true labels through
  ``POST /feedback`` on HAProxy, about a second later, with the cookie the prediction's
  answer set (HAProxy's ``conveyor_replica``: the feedback reaches the replica that
  answered, the only one that remembers the prediction);
- every ``--swap-every`` seconds the champion alias moves to the other version (the
  replicas follow it by polling);
- at ``KILL_AT`` of the run one replica is SIGKILLed, and ``rollout.py reconcile``
  replaces it ``KILLED_S`` later;
- at ``OUTAGE_AT`` the tracking server is SIGKILLed for ``OUTAGE_S`` and then started
  again: the replicas keep serving the version they loaded (no alias move meanwhile).

Every ``SAMPLE_S`` each replica's (and HAProxy's) RSS and open file descriptors are read
from /proc and each replica's /metrics is scraped (swaps, alias checks, feedback, and the
drift gauges: a change of them is one drift evaluation seen). Reported: RSS slope per
process (least squares, MB per hour; after ``WARMUP_FRACTION`` of the run, once the
bounded windows are full), p99 of the first tenth of the run against the last tenth,
failed requests with their reasons, descriptors over time, swaps, drift evaluations,
feedback. Results: ``benchmarks/results-soak.json``; the section "Soak" of
docs/benchmarks.md is rendered from it. ``--rounds`` (shared by every benchmark) is not
used: a soak is one run.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.integration.faults.conftest import MlflowServer, clean_env, free_port
from tests.integration.rollout.conftest import ROLLOUT, Fleet
from tests.integration.serving.conftest import (
    FEATURES,
    TARGET,
    make_table,
    register_conveyor_model,
)
from tests.traffic import Sample, Traffic, percentile

from benchmarks import publish

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results-soak.json"
DOCS = (ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "architecture.md")
START, END = "<!-- soak:start -->", "<!-- soak:end -->"
SECTION = "## Soak"

MODEL = "soak"
KEY = "a-signing-key-for-the-soak-benchmark-only"
REPLICAS = 3
CLIENTS = 4
ROWS_PER_REQUEST = 5
BODIES = 1009  # row sets: prime, so no drift window holds a whole number of cycles
POLL_S = 2.0  # the replicas' alias polling
DRIFT_S = 5.0  # the replicas' drift interval
FEEDBACK_ROWS = 5000  # rows the replicas remember for feedback (full in about 75 s)
SAMPLE_S = 2.0  # RSS, descriptors and /metrics
KILL_AT, KILLED_S = 0.4, 5.0
OUTAGE_AT, OUTAGE_S = 0.7, 20.0
WARMUP_FRACTION = 0.2  # of the run, left out of the "after warm-up" RSS slope
PROGRESS_S = 15.0
FAILURES_LISTED = 10
# Goals: flat memory (a slope under this, after warm-up, for every replica that ran the
# whole time: 240 MB a day); no failed request; p99 of the last tenth within this ratio.
MEMORY_GOAL_MB_PER_H = 10.0
P99_RATIO_GOAL = 1.5


# -- the registry and the fleet ------------------------------------------------------
def register_versions(url: str) -> list[str]:
    """Two versions of the pipeline (different data and sizes), signed, on the server;
    the first one is the champion."""
    from conveyor.registry.store import ModelRegistry

    os.environ["CONVEYOR_SIGNING_KEY"] = KEY
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    registry = ModelRegistry(url)
    versions = []
    for key, seed, trees in (("a", 1, 20), ("b", 2, 40)):
        _, version = register_conveyor_model(
            registry, make_table(n=600, seed=seed), name=MODEL, key=key,
            n_estimators=trees, onnx=True, profile=True,
        )  # fmt: skip
        versions.append(version)
    registry.promote(MODEL, versions[0])
    return versions


@dataclass
class SoakFleet(Fleet):
    """The rollout tests' fleet, with the environment its replicas need (the signing key
    of a store behind a tracking server)."""

    env: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        command = [*ROLLOUT, args[0], "--dir", str(self.folder), *args[1:]]
        return subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def start(self) -> None:
        """``up``: the replicas follow the champion alias on the tracking server."""
        result = self.run(
            "up", "--model-uri", f"models:/{MODEL}@champion", "--replicas", str(REPLICAS),
            "--port", str(self.port), "--ready-timeout", "180",
            "--", "--tracking-uri", self.tracking_uri, "--poll-interval", str(POLL_S),
            "--drift-interval", str(DRIFT_S), "--feedback-rows", str(FEEDBACK_ROWS),
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"rollout.py up failed:\n{result.stdout}{result.stderr}")

    def state(self) -> dict[str, Any]:
        """``state.json`` as rollout.py last saved it (replaced atomically)."""
        return dict(json.loads((self.folder / "state.json").read_text(encoding="utf-8")))


# -- what each process looks like ----------------------------------------------------
def proc_reading(pid: int) -> tuple[float, int] | None:
    """RSS (MB, ``VmRSS``) and open descriptors of a process; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
        fds = sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024, fds
    return None  # a zombie has no memory left


def scrape(port: int) -> dict[str, float] | None:
    """A replica's /metrics as {sample name and labels: value}; None when it did not answer."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=5.0) as answer:
            text = answer.read().decode("utf-8")
    except OSError:
        return None
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}"] = float(sample.value)
    return values


def counter(values: dict[str, float], name: str, **labels: str) -> float:
    """Sum of a counter's samples whose labels include ``labels``."""
    wanted = [f"{k}={v}" for k, v in labels.items()]
    return sum(
        value
        for key, value in values.items()
        if key.startswith(name + "{") and all(w in key for w in wanted)
    )


def drift_gauges(values: dict[str, float]) -> dict[str, float]:
    """The gauges a drift evaluation sets (window rows, drift share, feature statistics)."""
    prefixes = ("conveyor_drift_", "conveyor_feature_drift")
    return {k: v for k, v in values.items() if k.startswith(prefixes)}


@dataclass
class Watched:
    """One process over the run: (seconds, RSS MB, descriptors) and, for a replica, what
    its /metrics said last and how many drift evaluations changed its gauges."""

    name: str
    role: str
    pid: int
    readings: list[tuple[float, float, int]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    drift: dict[str, float] = field(default_factory=dict)
    evaluations: int = 0
    scrapes_failed: int = 0

    def see_metrics(self, values: dict[str, float]) -> None:
        """Keep the scrape; count a drift evaluation when a gauge appeared or changed
        (series that only disappeared are a swap's cleanup, not an evaluation)."""
        gauges = drift_gauges(values)
        if any(self.drift.get(k) != v for k, v in gauges.items()):
            self.evaluations += 1
        self.drift, self.metrics = gauges, values


class Sampler:
    """Every ``SAMPLE_S``: each replica's and HAProxy's RSS and descriptors, and each
    replica's /metrics."""

    def __init__(self, fleet: SoakFleet, origin: float) -> None:
        self.fleet, self.origin = fleet, origin
        self.watched: dict[str, Watched] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def sample(self) -> None:
        """One reading of every process the deployment lists now."""
        state = self.fleet.state()
        now = time.monotonic() - self.origin
        targets = [("haproxy", "proxy", state["proxy_pid"], None)]
        targets += [(r["name"], "replica", r["pid"], r["port"]) for r in state["replicas"]]
        for name, role, pid, port in targets:
            watched = self.watched.setdefault(name, Watched(name, role, pid))
            reading = proc_reading(pid)
            if reading is None:
                continue
            watched.readings.append((round(now, 1), round(reading[0], 2), reading[1]))
            if port is not None:
                values = scrape(port)
                if values is None:
                    watched.scrapes_failed += 1
                else:
                    watched.see_metrics(values)

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            with contextlib.suppress(OSError, ValueError):  # state.json mid-replace
                self.sample()
            self._stop.wait(max(0.0, SAMPLE_S - (time.monotonic() - started)))


# -- feedback ------------------------------------------------------------------------
@dataclass(frozen=True)
class Posted:
    """One ``POST /feedback``: when (monotonic), the answer, and the ids it matched."""

    started: float
    status: int | None
    matched: int = 0
    unknown: int = 0
    error: str | None = None


class Feedback:
    """Labels for ``share`` of the answered predictions, one POST each through HAProxy,
    about a second after the prediction started, sent with the cookie its answer set (so
    HAProxy routes it to the replica that answered)."""

    def __init__(self, traffic: Traffic, port: int, labels: list[list[str]], share: float) -> None:
        self.traffic, self.port, self.labels, self.share = traffic, port, labels, share
        self.posted: list[Posted] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Feedback:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def chosen(self, sample: Sample) -> bool:
        """A fixed share of the answered requests, by their (random) request id."""
        if sample.failed or not sample.request_id:
            return False
        return int(sample.request_id[:8], 16) / 0xFFFFFFFF < self.share

    def _loop(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        cursor = time.monotonic()
        while not self._stop.wait(0.5):
            until = time.monotonic() - 1.0
            for sample in self.traffic.between(cursor, until):
                if self.chosen(sample):
                    connection = self._post(connection, sample)
            cursor = until
        connection.close()

    def _post(
        self, connection: http.client.HTTPConnection, sample: Sample
    ) -> http.client.HTTPConnection:
        item = {"request_id": sample.request_id, "labels": self.labels[sample.body]}
        body = json.dumps({"feedback": [item]}).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if sample.cookie:
            headers["Cookie"] = sample.cookie
        started = time.monotonic()
        try:
            connection.request("POST", "/feedback", body=body, headers=headers)
            answer = connection.getresponse()
            text = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            self.posted.append(Posted(started, None, error=repr(exc)))
            connection.close()
            return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        if answer.status != 200:
            self.posted.append(Posted(started, answer.status, error=text[:200].decode()))
            return connection
        done = json.loads(text)
        self.posted.append(Posted(started, 200, len(done["matched"]), len(done["unknown"])))
        return connection


# -- the run -------------------------------------------------------------------------
@dataclass
class Timeline:
    """What the run did and when (seconds from the start of the traffic)."""

    moves: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[float] = field(default_factory=list)
    kill: dict[str, Any] = field(default_factory=dict)
    outage: dict[str, Any] = field(default_factory=dict)
    registry_down: threading.Event = field(default_factory=threading.Event)


def kill_and_reconcile(fleet: SoakFleet, timeline: Timeline, origin: float) -> None:
    """SIGKILL the first replica, ``KILLED_S`` of traffic on the others, ``reconcile``."""
    victim = fleet.state()["replicas"][0]
    killed = time.monotonic()
    os.kill(victim["pid"], signal.SIGKILL)
    time.sleep(KILLED_S)
    started = time.monotonic()
    result = fleet.run("reconcile")
    done = time.monotonic()
    timeline.kill = {
        "replica": victim["name"],
        "at_s": round(killed - origin, 1),
        "reconcile_s": round(done - started, 1),
        "until_s": round(done - origin, 1),
        "reconcile_exit": result.returncode,
        "reconcile_output": (result.stdout + result.stderr)[-1500:],
    }


def registry_outage(server: MlflowServer, timeline: Timeline, origin: float) -> None:
    """SIGKILL the tracking server, ``OUTAGE_S`` with none, start it again."""
    timeline.registry_down.set()
    stopped = time.monotonic()
    server.kill()
    time.sleep(OUTAGE_S)
    restart = time.monotonic()
    try:
        server.start()
    finally:
        back = time.monotonic()
        timeline.outage = {
            "at_s": round(stopped - origin, 1),
            "until_s": round(back - origin, 1),
            "down_s": round(back - stopped, 1),
            "restart_s": round(back - restart, 1),
        }
        timeline.registry_down.clear()


def move_alias(registry: Any, versions: list[str], timeline: Timeline, at: float) -> None:
    """The champion alias to the other version (skipped while the registry is down)."""
    if timeline.registry_down.is_set():
        timeline.skipped.append(round(at, 1))
        return
    current = timeline.moves[-1]["to"] if timeline.moves else versions[0]
    target = versions[1] if current == versions[0] else versions[0]
    started = time.monotonic()
    try:
        registry.promote(MODEL, target)
    except Exception as exc:  # a failed move is a finding, not the end of the run
        timeline.moves.append({"at_s": round(at, 1), "from": current, "to": current,
                               "error": repr(exc)[:300]})  # fmt: skip
        return
    took = time.monotonic() - started
    timeline.moves.append(
        {"at_s": round(at, 1), "from": current, "to": target, "took_s": round(took, 2)}
    )


def progress(elapsed: float, total: float, traffic: Traffic, feedback: Feedback) -> None:
    samples = traffic.between(0.0, float("inf"))
    failed = sum(s.failed for s in samples)
    posts = list(feedback.posted)
    print(
        f"[{elapsed:5.0f}/{total:.0f} s] requests {len(samples)}, failed {failed}; "
        f"feedback posts {len(posts)}, failed {sum(p.status != 200 for p in posts)}",
        file=sys.stderr,
        flush=True,
    )


@dataclass
class Run:
    """Everything the run recorded, before the analysis."""

    origin: float
    seconds: float
    samples: list[Sample]
    posted: list[Posted]
    timeline: Timeline
    watched: dict[str, Watched]


def drive(
    fleet: SoakFleet, server: MlflowServer, versions: list[str], args: argparse.Namespace
) -> Run:
    """The traffic, the feedback, the sampling, the swaps and the chaos, for the run."""
    from conveyor.registry.store import ModelRegistry

    registry = ModelRegistry(server.url)
    table = make_table(n=BODIES * ROWS_PER_REQUEST, seed=9)
    sets = [table.iloc[i : i + ROWS_PER_REQUEST] for i in range(0, len(table), ROWS_PER_REQUEST)]
    rows = [s[FEATURES].to_dict(orient="records") for s in sets]
    labels = [s[TARGET].tolist() for s in sets]
    total = args.minutes * 60
    timeline = Timeline()
    chaos: list[threading.Thread] = []
    traffic = Traffic("127.0.0.1", fleet.port, rows[0], clients=CLIENTS, rate=args.rate,
                      more_rows=rows[1:])  # fmt: skip
    with traffic, Feedback(traffic, fleet.port, labels, args.feedback_share) as feedback:
        origin = time.monotonic()
        with Sampler(fleet, origin) as sampler:
            next_swap, next_report = args.swap_every, PROGRESS_S
            events = {
                KILL_AT * total: lambda: kill_and_reconcile(fleet, timeline, origin),
                OUTAGE_AT * total: lambda: registry_outage(server, timeline, origin),
            }
            while (elapsed := time.monotonic() - origin) < total or any(
                t.is_alive() for t in chaos
            ):
                for at in [at for at in events if at <= elapsed]:
                    chaos.append(threading.Thread(target=events.pop(at), daemon=True))
                    chaos[-1].start()
                if elapsed >= next_swap and elapsed < total:
                    move_alias(registry, versions, timeline, elapsed)
                    next_swap += args.swap_every
                if elapsed >= next_report:
                    progress(elapsed, total, traffic, feedback)
                    next_report += PROGRESS_S
                time.sleep(0.2)
            seconds = time.monotonic() - origin
            sampler.sample()
    return Run(origin, seconds, traffic.samples, feedback.posted, timeline, sampler.watched)


# -- the analysis --------------------------------------------------------------------
def slope(points: list[tuple[float, float]]) -> dict[str, float] | None:
    """Least-squares slope of RSS over time, MB per hour, with its standard error."""
    if len(points) < 3 or len({t for t, _ in points}) < 2:
        return None
    times, values = [t for t, _ in points], [v for _, v in points]
    fit = statistics.linear_regression(times, values)
    residual = sum((v - (fit.slope * t + fit.intercept)) ** 2 for t, v in points)
    spread = sum((t - statistics.fmean(times)) ** 2 for t in times)
    stderr = math.sqrt(residual / (len(points) - 2) / spread)
    return {"mb_per_h": round(fit.slope * 3600, 2), "stderr_mb_per_h": round(stderr * 3600, 2)}


def process_report(watched: Watched, total: float) -> dict[str, Any]:
    """RSS and descriptors of one process over its life in the run."""
    readings = watched.readings
    if not readings:
        return {"role": watched.role, "pid": watched.pid, "readings": []}
    first_t, last_t = readings[0][0], readings[-1][0]
    warm = [(t, rss) for t, rss, _ in readings if t >= first_t + WARMUP_FRACTION * total]
    fds = [n for _, _, n in readings]
    report: dict[str, Any] = {
        "role": watched.role,
        "pid": watched.pid,
        "from_s": first_t,
        "to_s": last_t,
        "rss_mb": {
            "first": readings[0][1],
            "last": readings[-1][1],
            "max": max(r[1] for r in readings),
        },
        "slope": slope([(t, rss) for t, rss, _ in readings]),
        "slope_after_warmup": slope(warm),
        "fds": {"first": fds[0], "last": fds[-1], "max": max(fds)},
        "readings": readings,
    }
    if watched.role == "replica":
        report["metrics"] = {
            "swaps_success": counter(watched.metrics, "conveyor_model_swaps_total",
                                     result="success"),
            "swaps_failure": counter(watched.metrics, "conveyor_model_swaps_total",
                                     result="failure"),
            "alias_checks_error": counter(watched.metrics, "conveyor_model_alias_checks_total",
                                          result="error"),
            "feedback_matched": counter(watched.metrics, "conveyor_feedback_total",
                                        result="matched"),
            "feedback_unknown_id": counter(watched.metrics, "conveyor_feedback_total",
                                           result="unknown_id"),
        }  # fmt: skip
        report["drift_evaluations_seen"] = watched.evaluations
        report["drift_evaluations_expected"] = int((last_t - first_t) // DRIFT_S)
        report["scrapes_failed"] = watched.scrapes_failed
    return report


def phase(at: float, timeline: Timeline) -> str:
    """Which part of the run a moment falls in (for the failures)."""
    kill, outage = timeline.kill, timeline.outage
    if kill and kill["at_s"] <= at <= kill["until_s"] + 5:
        return "replica killed"
    if outage and outage["at_s"] <= at <= outage["until_s"] + 5:
        return "registry down"
    if any(0 <= at - m["at_s"] <= 10 for m in timeline.moves):
        return "after an alias move"
    return "steady"


def traffic_report(run: Run, total: float) -> dict[str, Any]:
    """Requests, failures (the first ones with their reason), latency drift."""
    relative = [(s.started - run.origin, s) for s in run.samples]
    ok = [s.latency * 1000 for _, s in relative if not s.failed]
    tenth = total / 10
    first = [s.latency * 1000 for t, s in relative if t < tenth and not s.failed]
    last = [s.latency * 1000 for t, s in relative if total - tenth <= t < total and not s.failed]
    failures: list[dict[str, Any]] = [
        {"at_s": round(t, 1), "phase": phase(t, run.timeline), "status": s.status,
         "error": s.error}
        for t, s in relative if s.failed
    ]  # fmt: skip
    p99_first, p99_last = percentile(first, 99), percentile(last, 99)
    return {
        "requests": len(relative),
        "failed": len(failures),
        "failed_by_phase": {
            p: sum(f["phase"] == p for f in failures)
            for p in sorted({f["phase"] for f in failures})
        },
        "first_failures": failures[:FAILURES_LISTED],
        "p50_ms": round(percentile(ok, 50), 2),
        "p99_ms": round(percentile(ok, 99), 2),
        "p99_first_tenth_ms": round(p99_first, 2),
        "p99_last_tenth_ms": round(p99_last, 2),
        "p99_ratio": round(p99_last / p99_first, 2),
    }


def window(run: Run, event: dict[str, Any]) -> dict[str, Any]:
    """The requests that started during a chaos event and the versions that answered."""
    if not event:
        return {}
    inside = [s for s in run.samples if event["at_s"] <= s.started - run.origin <= event["until_s"]]
    versions = sorted({s.version for s in inside if s.version})
    return {
        "requests": len(inside),
        "failed": sum(s.failed for s in inside),
        "versions_answered": versions,
    }


def swap_report(run: Run) -> dict[str, Any]:
    """Each alias move: how long until no replica answered the version it left."""
    moves = [m for m in run.timeline.moves if "error" not in m]
    lags = []
    for index, move in enumerate(moves):
        end = moves[index + 1]["at_s"] if index + 1 < len(moves) else float("inf")
        after = [s for s in run.samples if move["at_s"] <= s.started - run.origin < end]
        if not any(s.version == move["to"] for s in after):
            continue  # not followed before the next move (or the end)
        old = [s.started + s.latency - run.origin for s in after if s.version == move["from"]]
        lags.append(round(max(old, default=move["at_s"]) - move["at_s"], 2))
    return {
        "moves": len(moves),
        "failed_moves": [m for m in run.timeline.moves if "error" in m],
        "skipped_registry_down": run.timeline.skipped,
        "followed": len(lags),
        "lag_s": lags,
        "lag_stats": publish.stats(lags) if lags else None,
        "timeline": run.timeline.moves,
    }


def feedback_report(run: Run, total: float) -> dict[str, Any]:
    posted = run.posted
    failures = [
        {"at_s": round(p.started - run.origin, 1),
         "phase": phase(p.started - run.origin, run.timeline), "status": p.status,
         "error": p.error}
        for p in posted if p.status != 200
    ]  # fmt: skip
    return {
        "posts": len(posted),
        "accepted": sum(p.status == 200 for p in posted),
        "failed": len(failures),
        "first_failures": failures[:FAILURES_LISTED],
        "matched": sum(p.matched for p in posted),
        "unknown_id": sum(p.unknown for p in posted),
    }


def analyse(run: Run, args: argparse.Namespace, versions: list[str]) -> dict[str, Any]:
    total = args.minutes * 60
    processes = {n: process_report(w, total) for n, w in sorted(run.watched.items())}
    replicas = {n: p for n, p in processes.items() if p["role"] == "replica"}
    return {
        "settings": {
            "minutes": args.minutes,
            "replicas": REPLICAS,
            "clients": CLIENTS,
            "rate_per_client": args.rate,
            "rows_per_request": ROWS_PER_REQUEST,
            "row_sets": BODIES,
            "feedback_share": args.feedback_share,
            "feedback_with_cookie": True,
            "swap_every_s": args.swap_every,
            "poll_interval_s": POLL_S,
            "drift_interval_s": DRIFT_S,
            "feedback_rows": FEEDBACK_ROWS,
            "sample_every_s": SAMPLE_S,
            "kill_at": KILL_AT,
            "killed_s": KILLED_S,
            "outage_at": OUTAGE_AT,
            "outage_s": OUTAGE_S,
            "warmup_fraction": WARMUP_FRACTION,
            "versions": versions,
            "registry": "mlflow server (SQLite, proxied artifacts), one worker",
        },
        "run_s": round(run.seconds, 1),
        "traffic": traffic_report(run, total),
        "feedback": feedback_report(run, total),
        "swaps": {
            **swap_report(run),
            "replica_swaps_success": sum(r["metrics"]["swaps_success"] for r in replicas.values()),
            "replica_swaps_failure": sum(r["metrics"]["swaps_failure"] for r in replicas.values()),
        },
        "drift": {
            "evaluations_seen": sum(r["drift_evaluations_seen"] for r in replicas.values()),
            "evaluations_expected": sum(r["drift_evaluations_expected"] for r in replicas.values()),
        },
        "kill": {**run.timeline.kill, **window(run, run.timeline.kill)},
        "outage": {
            **run.timeline.outage,
            **window(run, run.timeline.outage),
            "alias_check_errors": sum(
                r["metrics"]["alias_checks_error"] for r in replicas.values()
            ),
        },
        "processes": processes,
    }


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """The measures and the goals; spreads over the replicas that ran the whole run."""
    replicas = {n: p for n, p in result["processes"].items() if p["role"] == "replica"}
    run_s = result["run_s"]
    whole = {n: p for n, p in replicas.items()
             if p.get("readings") and p["from_s"] <= SAMPLE_S * 3
             and p["to_s"] >= run_s - SAMPLE_S * 3}  # fmt: skip
    slopes = [p["slope_after_warmup"]["mb_per_h"] for p in whole.values()
              if p["slope_after_warmup"]]  # fmt: skip
    fd_growth = [float(p["fds"]["last"] - p["fds"]["first"]) for p in replicas.values()
                 if p.get("readings")]  # fmt: skip
    traffic, feedback = result["traffic"], result["feedback"]
    return {
        "run_minutes": round(run_s / 60, 1),
        "requests": traffic["requests"],
        "failed": traffic["failed"],
        "feedback_failed": feedback["failed"],
        "p99_ratio": traffic["p99_ratio"],
        "rss_slope_after_warmup_mb_per_h": publish.stats(slopes) if slopes else None,
        "fd_growth": publish.stats(fd_growth) if fd_growth else None,
        "swaps": result["swaps"]["moves"],
        "swap_lag_s": result["swaps"]["lag_stats"],
        "drift_evaluations_seen": result["drift"]["evaluations_seen"],
        "feedback_matched": feedback["matched"],
        "goals": {
            "memory_flat": bool(slopes) and max(slopes) <= MEMORY_GOAL_MB_PER_H,
            "no_failed_requests": traffic["failed"] == 0 and feedback["failed"] == 0,
            "p99_stable": traffic["p99_ratio"] <= P99_RATIO_GOAL,
        },
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp, contextlib.ExitStack() as stack:
        folder = Path(tmp)
        (folder / "registry").mkdir()
        server = MlflowServer(folder / "registry")
        server.start()
        stack.callback(server.kill)
        print("registering two versions", file=sys.stderr)
        versions = register_versions(server.url)
        fleet = SoakFleet(folder / "deployment", free_port(), server.url, {},
                          env=clean_env(CONVEYOR_SIGNING_KEY=KEY))  # fmt: skip
        print(f"starting {REPLICAS} replicas behind HAProxy", file=sys.stderr)
        stack.callback(fleet.run, "down")
        try:
            fleet.start()
        finally:
            for log in sorted((folder / "deployment").glob("serve-*.log")):
                if "Traceback" in log.read_text(errors="replace"):
                    print(f"{log.name}:\n{log.read_text(errors='replace')[-2000:]}")
        run = drive(fleet, server, versions, args)
        result = analyse(run, args, versions)
    result["summary"] = summarize(result)
    return result


# -- the docs ------------------------------------------------------------------------
def spread(v: dict[str, float] | None, digits: int = 1) -> str:
    if v is None:
        return "n/a"
    return f"{v['median']:.{digits}f} ({v['min']:.{digits}f} to {v['max']:.{digits}f})"


def second_half(process: dict[str, Any]) -> dict[str, float] | None:
    """The RSS slope over the second half of a process's readings (from the results)."""
    middle = (process["from_s"] + process["to_s"]) / 2
    return slope([(t, rss) for t, rss, _ in process["readings"] if t >= middle])


def fit(s: dict[str, float] | None) -> str:
    return "n/a" if s is None else f"{s['mb_per_h']:+.1f} ± {s['stderr_mb_per_h']:.1f}"


def process_rows(result: dict[str, Any]) -> Iterator[str]:
    """One table row per process: RSS, its slopes, descriptors."""
    for name, p in result["processes"].items():
        if not p.get("readings"):
            continue
        rss, fds = p["rss_mb"], p["fds"]
        yield (
            f"| {name} ({p['role']}) | {p['from_s']:.0f}-{p['to_s']:.0f} | "
            f"{rss['first']:.0f} / {rss['last']:.0f} / {rss['max']:.0f} | "
            f"{fit(p['slope'])} | {fit(p['slope_after_warmup'])} | {fit(second_half(p))} | "
            f"{fds['first']} / {fds['last']} / {fds['max']} |"
        )


def failure_lines(title: str, failures: list[dict[str, Any]]) -> list[str]:
    if not failures:
        return []
    lines = [f"{title}:", ""]
    for f in failures:
        reason = f["error"] if f["status"] is None else f"HTTP {f['status']} {f['error'] or ''}"
        lines.append(f"- at {f['at_s']:.1f} s ({f['phase']}): {reason.strip()[:160]}")
    return [*lines, ""]


def feedback_route(settings: dict[str, Any]) -> str:
    """How the run's feedback found its replica (runs before the cookie sent none)."""
    if settings.get("feedback_with_cookie"):
        return (
            "Feedback goes through HAProxy with the cookie its prediction's answer set, "
            "which routes it to the replica that answered, the only one that remembers it"
        )
    return (
        "Feedback goes through HAProxy, which balances it round-robin like any request, "
        "and only the replica that answered a prediction remembers it"
    )


def render(result: dict[str, Any]) -> str:
    """The Markdown between the markers in the docs."""
    meta, s, st = result["meta"], result["summary"], result["settings"]
    t, fb, sw, kill, out = (result[k] for k in ("traffic", "feedback", "swaps", "kill", "outage"))
    goals = s["goals"]
    halves = [
        h["mb_per_h"]
        for p in result["processes"].values()
        if p["role"] == "replica" and p.get("readings") and p["from_s"] <= SAMPLE_S * 3
        and p["to_s"] >= result["run_s"] - SAMPLE_S * 3 and (h := second_half(p))
    ]  # fmt: skip
    rate = st["clients"] * st["rate_per_client"]
    return "\n".join(
        [
            f"Measured in `benchmarks/results-soak.json` ({meta['date'][:10]}, "
            f"{meta['machine'].split(',')[0]}, commit {meta['commit'][:10]}, load average "
            f"{meta['load_average_start']} at the start): one run of {s['run_minutes']} "
            f"minutes (`python -m benchmarks.soak --minutes {st['minutes']:g}`); a soak of "
            "hours would resolve slow growth that this run cannot. "
            f"{st['replicas']} `conveyor serve` replicas following `models:/soak@champion` "
            f"(alias polled every {st['poll_interval_s']:g} s, drift evaluated every "
            f"{st['drift_interval_s']:g} s) behind HAProxy (`deploy/rollout/rollout.py`), "
            "the registry behind a real `mlflow server`. "
            f"{rate:g} requests/s of {st['rows_per_request']} rows from {st['clients']} "
            f"keep-alive clients, paced; {st['feedback_share']:.0%} of the answers labelled "
            f"through `POST /feedback` on HAProxy; the champion alias moved between two "
            f"versions every {st['swap_every_s']:g} s; one replica SIGKILLed at "
            f"{kill.get('at_s', 0):.0f} s and replaced by `reconcile`; the tracking server "
            f"SIGKILLed at {out.get('at_s', 0):.0f} s and back {out.get('down_s', 0):.0f} s "
            "later.",
            "",
            "| measure | result |",
            "|---|---|",
            f"| requests (failed) | {t['requests']} ({t['failed']}) |",
            f"| p50 / p99 over the run | {t['p50_ms']:.2f} / {t['p99_ms']:.2f} ms |",
            f"| latency drift: p99 first tenth, last tenth | {t['p99_first_tenth_ms']:.2f} ms, "
            f"{t['p99_last_tenth_ms']:.2f} ms: {t['p99_ratio']:.2f}x |",
            f"| alias moves (the new version answered before the next move) | {sw['moves']} "
            f"({sw['followed']}), {len(sw['skipped_registry_down'])} skipped while the "
            f"registry was down; replicas' swaps {sw['replica_swaps_success']:.0f} done, "
            f"{sw['replica_swaps_failure']:.0f} failed |",
            f"| seconds from a move until no answer came from the old version | "
            f"{spread(sw['lag_stats'])} |",
            "| drift evaluations seen in the replicas' /metrics (one per "
            f"{st['drift_interval_s']:g} s expected) | {result['drift']['evaluations_seen']} "
            f"(of {result['drift']['evaluations_expected']}) |",
            f"| feedback posts: accepted, failed; labels matched, unknown id | {fb['posts']}: "
            f"{fb['accepted']}, {fb['failed']}; {fb['matched']}, {fb['unknown_id']} |",
            f"| replica SIGKILLed: `reconcile` took (exit code); requests from the kill until "
            f"it was replaced (failed) | {kill.get('reconcile_s', 0):.1f} s "
            f"({kill.get('reconcile_exit')}); {kill.get('requests', 0)} ({kill.get('failed', 0)})"
            " |",
            f"| registry down: requests meanwhile (failed), versions answering, failed alias "
            f"checks | {out.get('requests', 0)} ({out.get('failed', 0)}), "
            f"{', '.join(out.get('versions_answered', []))}, {out['alias_check_errors']:.0f} |",
            "",
            "| process | seconds of the run (from-to) | RSS first / last / max, MB | RSS slope, "
            "MB/h | after warm-up, MB/h | second half, MB/h | open descriptors first / last "
            "/ max |",
            "|---|---|---|---|---|---|---|",
            *process_rows(result),
            "",
            f"RSS slope: least squares over a reading every {st['sample_every_s']:g} s "
            "(± its standard error); after warm-up leaves out the first "
            f"{st['warmup_fraction']:.0%} of the run, while the drift and feedback windows "
            "fill. Over the replicas that ran the whole time: "
            f"{spread(s['rss_slope_after_warmup_mb_per_h'])} MB/h after warm-up, "
            f"{spread(publish.stats(halves)) if halves else 'n/a'} MB/h over the second half. "
            f"{feedback_route(st)}: "
            f"{fb['matched'] / max(1, fb['matched'] + fb['unknown_id']):.0%} of the labels "
            "posted were matched, the others were reported as unknown ids.",
            "",
            *failure_lines("First failed requests", t["first_failures"]),
            *failure_lines("First failed feedback posts", fb["first_failures"]),
            f"Goals: memory flat, at most {MEMORY_GOAL_MB_PER_H:g} MB/h after warm-up for "
            f"every replica that ran the whole time ({publish.verdict(goals['memory_flat'])}); "
            f"0 failed requests and feedback posts "
            f"({publish.verdict(goals['no_failed_requests'])}); p99 of the last tenth at most "
            f"{P99_RATIO_GOAL:g}x the first tenth's ({publish.verdict(goals['p99_stable'])}).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the run")
    parser.add_argument("--rate", type=float, default=10.0, help="requests/s per client")
    parser.add_argument("--swap-every", type=float, default=30.0, help="seconds between moves")
    parser.add_argument("--feedback-share", type=float, default=0.2, help="answers labelled")
    publish.main(parser, measure, publish.Publication(RESULTS, DOCS, START, END, SECTION, render))


if __name__ == "__main__":
    main()
