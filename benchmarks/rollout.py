"""Rollouts under load: failed requests and latency through HAProxy, rounds of four scenarios.

    python -m benchmarks.rollout [--rounds 3] [--rate 25] [--no-write] [--render-only]

Each round starts three fresh ``conveyor serve`` replicas of version 1 (ONNX runtime,
monitoring on: the defaults) behind HAProxy with ``deploy/rollout/rollout.py up`` and
sends steady traffic through HAProxy (4 clients, ``--rate`` requests/s each, paced) while
it runs, one after the other:

1. a good rollout to version 2 (steady traffic for the baseline before it, and after);
2. a bad rollout to version 3, whose model files were corrupted after registration (it
   never becomes ready), and its ``undo``;
3. SIGKILL to one replica, 5 s of traffic on the rest, then ``reconcile``.

The steady p99 is measured in the same round, just before the rollout, by the same load
generator: the ratio compares like with like. HAProxy's retry and redispatch counters
show the retry policy at work when the replica is killed. Results:
``benchmarks/results-rollout.json``; the table goes into docs/benchmarks.md,
docs/deployment.md and docs/architecture.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.integration.faults.conftest import free_port
from tests.integration.rollout.conftest import Fleet, Outcome, make_store, under_load
from tests.traffic import Sample, percentile

from benchmarks import publish

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results-rollout.json"
DOCS = (
    ROOT / "docs" / "benchmarks.md",
    ROOT / "docs" / "deployment.md",
    ROOT / "docs" / "architecture.md",
)
START, END = "<!-- rollout:start -->", "<!-- rollout:end -->"
SECTION = "## Rollouts under load"
STEADY_S = 10.0
KILLED_S = 5.0


def summary(samples: list[Sample]) -> dict[str, float]:
    latencies = [s.latency * 1000 for s in samples if not s.failed]
    return {
        "requests": len(samples),
        "failed": sum(s.failed for s in samples),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
    }


def proxy_counters(fleet: Fleet) -> dict[str, int]:
    """The serving backend's retries and redispatches (HAProxy's ``show stat``)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(fleet.folder / "haproxy.sock"))
        sock.sendall(b"show stat\n")
        text = b"".join(iter(lambda: sock.recv(65536), b"")).decode()
    lines = text.strip().splitlines()
    header = lines[0].lstrip("# ").split(",")
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        if row["pxname"] == "serve" and row["svname"] == "BACKEND":
            return {"retries": int(row["wretr"] or 0), "redispatches": int(row["wredis"] or 0)}
    raise RuntimeError("HAProxy reported no serving backend")


def command_ok(outcome: Outcome, expected: int = 0) -> None:
    if outcome.result.returncode != expected:
        raise RuntimeError(f"unexpected exit: {outcome.result.stdout}{outcome.result.stderr}")


def one_round(store: tuple[str, dict[str, str]], folder: Path, rate: float) -> dict[str, Any]:
    uri, versions = store
    fleet = Fleet(folder / "deployment", free_port(), uri, versions)
    result = fleet.up()
    if result.returncode != 0:
        raise RuntimeError(result.stdout + result.stderr)
    load = {"steady_s": STEADY_S, "rate": rate}
    try:
        good = under_load(fleet, lambda: fleet.run("rollout", "--model-uri", fleet.uri("next")),
                          **load)  # fmt: skip
        command_ok(good)
        bad = under_load(fleet, lambda: fleet.run("rollout", "--model-uri", fleet.uri("bad")),
                         steady_s=3.0, rate=rate)  # fmt: skip
        command_ok(bad, expected=1)
        undone = under_load(fleet, lambda: fleet.run("undo"), steady_s=3.0, rate=rate)
        command_ok(undone)
        victim = fleet.status()["replicas"][0]
        counters = proxy_counters(fleet)

        def kill() -> dict[str, int]:
            os.kill(victim["pid"], signal.SIGKILL)
            time.sleep(KILLED_S)
            after = proxy_counters(fleet)
            return {k: after[k] - counters[k] for k in counters}

        killed = under_load(fleet, kill, steady_s=3.0, rate=rate)
        reconcile = fleet.run("reconcile")
        if reconcile.returncode != 0:
            raise RuntimeError(reconcile.stderr)
    finally:
        fleet.run("down")
    steady, rolling = summary(good.before), summary(good.during)
    return {
        "good": {
            "steady": steady,
            "rollout": rolling,
            "after": summary(good.after),
            "p99_ratio": round(rolling["p99_ms"] / steady["p99_ms"], 2),
            "seconds": round(good.seconds, 1),
        },
        "bad": {
            "traffic": summary(bad.samples),
            "seconds_to_stop": round(bad.seconds, 1),
            "undo_traffic": summary(undone.samples),
            "undo_seconds": round(undone.seconds, 1),
        },
        "killed": {"traffic": summary(killed.during), **killed.result},
    }


def measure(rounds: int, rate: float) -> dict[str, Any]:
    result: dict[str, Any] = {
        "settings": {
            "replicas": 3,
            "clients": 4,
            "rate_per_client": rate,
            "runtime": "onnx (auto)",
            "monitoring": True,
            "access_log": False,
            "steady_s": STEADY_S,
            "killed_s": KILLED_S,
            "retry_policy": "retries 2, redispatch on each, on conn-failure and "
            "empty-response; /feedback never retried",
        },
        "rounds": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-rollout-") as tmp:
        (Path(tmp) / "store").mkdir()
        store = make_store(Path(tmp) / "store")
        for index in range(rounds):
            print(f"round {index + 1}/{rounds}", file=sys.stderr)
            folder = Path(tmp) / f"round-{index}"
            folder.mkdir()
            result["rounds"].append(one_round(store, folder, rate))
    result["summary"] = summarize(result["rounds"])
    return result


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    def pick(*path: str) -> list[float]:
        values = []
        for r in rounds:
            value: Any = r
            for key in path:
                value = value[key]
            values.append(float(value))
        return values

    return {
        "steady_p99_ms": publish.stats(pick("good", "steady", "p99_ms")),
        "rollout_p99_ms": publish.stats(pick("good", "rollout", "p99_ms")),
        "p99_ratio": publish.stats(pick("good", "p99_ratio")),
        "rollout_s": publish.stats(pick("good", "seconds")),
        "bad_stop_s": publish.stats(pick("bad", "seconds_to_stop")),
        "undo_s": publish.stats(pick("bad", "undo_seconds")),
        "killed_p99_ms": publish.stats(pick("killed", "traffic", "p99_ms")),
        "redispatches": publish.stats(pick("killed", "redispatches")),
        "failed": {
            "good": sum(pick("good", "rollout", "failed")) + sum(pick("good", "after", "failed")),
            "bad": sum(pick("bad", "traffic", "failed")),
            "undo": sum(pick("bad", "undo_traffic", "failed")),
            "killed": sum(pick("killed", "traffic", "failed")),
        },
        "requests": {
            "good": sum(pick("good", "rollout", "requests")),
            "bad": sum(pick("bad", "traffic", "requests")),
            "undo": sum(pick("bad", "undo_traffic", "requests")),
            "killed": sum(pick("killed", "traffic", "requests")),
        },
    }


def render(result: dict[str, Any]) -> str:
    """The Markdown between the markers in the docs."""
    meta, s, settings = result["meta"], result["summary"], result["settings"]
    rounds = len(result["rounds"])

    def spread(key: str, digits: int = 1) -> str:
        v = s[key]
        return f"{v['median']:.{digits}f} ({v['min']:.{digits}f}-{v['max']:.{digits}f})"

    failed = {k: int(v) for k, v in s["failed"].items()}
    requests = {k: int(v) for k, v in s["requests"].items()}
    rate = settings["clients"] * settings["rate_per_client"]
    if s["p99_ratio"]["max"] <= 2.0:
        ratio_verdict = "met in every round"
    elif s["p99_ratio"]["median"] <= 2.0:
        ratio_verdict = "met on the median, not in every round"
    else:
        ratio_verdict = "not met"
    return "\n".join(
        [
            f"Measured in `benchmarks/results-rollout.json` ({meta['date'][:10]}, "
            f"{meta['machine'].split(',')[0]}, commit {meta['commit'][:10]}, {rounds} rounds, "
            "median (min-max)); `python -m benchmarks.rollout` reproduces it. Three "
            "`conveyor serve` replicas (ONNX runtime, monitoring on) behind HAProxy on the "
            f"same machine as the load: {rate:.0f} requests/s from "
            f"{settings['clients']} keep-alive clients, paced. The steady p99 is measured "
            "just before each rollout by the same clients.",
            "",
            "| scenario | requests | failed | measure |",
            "|---|---|---|---|",
            f"| good rollout (3 replicas replaced) | {requests['good']} | {failed['good']} | "
            f"p99 {spread('rollout_p99_ms', 2)} ms against steady "
            f"{spread('steady_p99_ms', 2)} ms: {spread('p99_ratio', 2)}x; "
            f"takes {spread('rollout_s')} s |",
            f"| bad rollout (the new version's files fail their signature check: its "
            f"replica exits) | {requests['bad']} | {failed['bad']} | "
            f"stopped after {spread('bad_stop_s')} s, old replicas kept |",
            f"| `undo` after it (no replica had been replaced) | {requests['undo']} | "
            f"{failed['undo']} | {spread('undo_s')} s |",
            f"| one replica SIGKILLed, {settings['killed_s']:.0f} s of traffic | "
            f"{requests['killed']} | {failed['killed']} | p99 "
            f"{spread('killed_p99_ms', 2)} ms; {spread('redispatches', 0)} requests "
            "redispatched by HAProxy |",
            "",
            f"Goals: 0 failed requests in every scenario "
            f"({publish.verdict(sum(failed.values()) == 0)}); p99 during a good rollout at "
            f"most 2x the steady p99 ({ratio_verdict}).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=25.0, help="requests/s per client")
    publish.main(
        parser,
        lambda args: measure(args.rounds, args.rate),
        publish.Publication(RESULTS, DOCS, START, END, SECTION, render),
    )


if __name__ == "__main__":
    main()
