"""Rollouts under load through a real HAProxy: good, bad and undone, and a replica killed.

Latency during a rollout against steady state is a benchmark figure
(``python -m benchmarks.rollout``), not asserted here: these tests check outcomes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.integration.faults.conftest import free_port
from tests.integration.rollout.conftest import (
    MODEL,
    ROOT,
    Fleet,
    Outcome,
    scenario,
    under_load,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def good(fleet: Fleet) -> Outcome:
    """Version 1 -> version 2 under load."""
    return scenario(fleet, "rollout", "--model-uri", fleet.uri("next"))


@pytest.fixture(scope="module")
def bad(fleet: Fleet, good: Outcome) -> Outcome:
    """Version 2 -> version 3, whose model files were corrupted: it never becomes ready."""
    return scenario(fleet, "rollout", "--model-uri", fleet.uri("bad"), "--ready-timeout", "60")


@pytest.fixture(scope="module")
def undone(fleet: Fleet, bad: Outcome) -> Outcome:
    return scenario(fleet, "undo")


@pytest.fixture(scope="module")
def killed(fleet: Fleet, undone: Outcome) -> Outcome:
    """SIGKILL to one replica under load, then ``reconcile`` replaces it."""
    victim = fleet.status()["replicas"][0]

    def kill_and_reconcile() -> object:
        os.kill(victim["pid"], signal.SIGKILL)
        time.sleep(3.0)  # traffic meets the dead replica before anything replaces it
        return fleet.run("reconcile")

    return under_load(fleet, kill_and_reconcile)


def failures(outcome: Outcome) -> list[str]:
    return [s.error or f"HTTP {s.status}" for s in outcome.samples if s.failed]


def test_good_rollout_succeeds(good: Outcome) -> None:
    assert good.result.returncode == 0, good.result.stdout + good.result.stderr


def test_good_rollout_fails_no_request(good: Outcome) -> None:
    assert good.during, "no request ran during the rollout"
    assert failures(good) == []


def test_good_rollout_serves_both_versions_while_it_runs(fleet: Fleet, good: Outcome) -> None:
    versions = {s.version for s in good.during}
    assert versions == {fleet.versions["good"], fleet.versions["next"]}


def test_good_rollout_leaves_only_the_new_version(fleet: Fleet, good: Outcome) -> None:
    assert good.after, "no request ran after the rollout"
    assert {s.version for s in good.after} == {fleet.versions["next"]}


def test_good_rollout_leaves_three_replicas_in_rotation(fleet: Fleet, good: Outcome) -> None:
    replicas = good.status["replicas"]
    assert [(r["revision"], r["running"], r["in_rotation"]) for r in replicas] == [
        (fleet.uri("next"), True, True)
    ] * 3


def test_bad_rollout_stops_with_an_error_naming_the_replica_and_the_fix(bad: Outcome) -> None:
    assert bad.result.returncode == 1
    assert "stopped" in bad.result.stderr
    assert "refusing to load it" in bad.result.stderr  # the replica's own error, quoted
    assert "undo" in bad.result.stderr


def test_bad_rollout_fails_no_request(bad: Outcome) -> None:
    assert bad.during, "no request ran during the rollout"
    assert failures(bad) == []


def test_bad_rollout_never_sends_traffic_to_the_bad_version(fleet: Fleet, bad: Outcome) -> None:
    assert {s.version for s in bad.samples} == {fleet.versions["next"]}


def test_bad_rollout_keeps_the_old_replicas_in_rotation(fleet: Fleet, bad: Outcome) -> None:
    replicas = bad.status["replicas"]
    assert [(r["revision"], r["running"], r["in_rotation"]) for r in replicas] == [
        (fleet.uri("next"), True, True)
    ] * 3


def test_bad_rollout_is_recorded_as_stopped(fleet: Fleet, bad: Outcome) -> None:
    assert (bad.status["revision"], bad.status["status"]) == (fleet.uri("bad"), "stopped")


def test_undo_restores_the_revision_before_the_stopped_rollout(
    fleet: Fleet, undone: Outcome
) -> None:
    assert undone.result.returncode == 0, undone.result.stderr
    status = undone.status
    assert (status["revision"], status["status"]) == (fleet.uri("next"), "complete")


def test_undo_fails_no_request(undone: Outcome) -> None:
    assert undone.samples, "no traffic around the undo"
    assert failures(undone) == []


def test_a_killed_replica_fails_no_request(killed: Outcome) -> None:
    # HAProxy's retry policy (deploy/rollout/haproxy.cfg): a prediction that got no answer
    # is retried on another replica, up to twice. The policy allows no failure here.
    assert killed.during, "no request ran while the replica was dead"
    assert failures(killed) == []


def test_reconcile_replaces_the_killed_replica(fleet: Fleet, killed: Outcome) -> None:
    assert killed.result.returncode == 0, killed.result.stderr
    replicas = killed.status["replicas"]
    assert [(r["running"], r["in_rotation"]) for r in replicas] == [(True, True)] * 3


def deploy_script(*args: str) -> subprocess.CompletedProcess[str]:
    """deploy/k8s/deploy.py, as the deploy and promotion workflows run it."""
    return subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "k8s" / "deploy.py"), *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def replica_urls(outcome: Outcome) -> list[str]:
    return [f"http://127.0.0.1:{r['port']}" for r in outcome.status["replicas"]]


def test_smoke_prediction_through_the_proxy_names_the_version(
    fleet: Fleet, killed: Outcome
) -> None:
    result = deploy_script("smoke", "--url", f"http://127.0.0.1:{fleet.port}", "--model", MODEL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(
        f"smoke prediction answered by {MODEL} version {fleet.versions['next']}"
    )


def test_follow_passes_once_every_replica_serves_the_version(fleet: Fleet, killed: Outcome) -> None:
    urls = [arg for url in replica_urls(killed) for arg in ("--url", url)]
    result = deploy_script("follow", *urls, "--model", MODEL,
                           "--version", fleet.versions["next"], "--timeout", "30")  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_follow_names_the_replicas_behind_when_time_runs_out(fleet: Fleet, killed: Outcome) -> None:
    url = replica_urls(killed)[0]
    result = deploy_script("follow", "--url", url, "--model", MODEL,
                           "--version", fleet.versions["good"], "--timeout", "1")  # fmt: skip
    assert result.returncode == 1
    assert f"{url} answered {fleet.versions['next']}" in result.stderr


def test_up_with_a_version_that_never_loads_fails_and_down_cleans_up(
    fleet: Fleet, tmp_path: Path
) -> None:
    other = Fleet(tmp_path / "other", free_port(), fleet.tracking_uri, fleet.versions)
    result = other.run(
        "up", "--model-uri", other.uri("bad"), "--replicas", "1", "--port", str(other.port),
        "--", "--tracking-uri", other.tracking_uri,
    )  # fmt: skip
    assert result.returncode == 1
    assert "refusing to load it" in result.stderr
    assert f"`down --dir {other.folder}` stops what did start" in result.stderr
    assert other.run("down").returncode == 0
