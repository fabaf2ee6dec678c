"""SIGTERM drains: not ready at once, still serving for the drain delay, then exit 0."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tests.integration.serving.conftest import MODEL, Answer, Load, launch, rows_payload

from conveyor.registry.store import ModelRegistry

pytestmark = pytest.mark.integration

DRAIN_S = 6.0
GRACE_S = 10
LOAD_THREADS = 4


def trickle(body: bytes, until: float) -> Iterator[bytes]:
    """Send half the body now and the rest at ``until``: a request in flight until then."""
    yield body[: len(body) // 2]
    time.sleep(max(0.0, until - time.monotonic()))
    yield body[len(body) // 2 :]


def send_slowly(url: str, until: float, answers: list[Answer], lock: threading.Lock) -> None:
    body = json.dumps(rows_payload(50, seed=7)).encode()
    started = time.monotonic()
    try:
        response = httpx.post(
            f"{url}/invocations",
            content=trickle(body, until),
            headers={"content-type": "application/json"},
            timeout=30.0,
        )
    except httpx.HTTPError as exc:
        answer = Answer(started, time.monotonic(), "", f"{type(exc).__name__}: {exc}")
    else:
        failure = None if response.status_code == 200 else response.text[:300]
        version = response.headers.get("x-model-version", "")
        answer = Answer(started, time.monotonic(), version, failure)
    with lock:
        answers.append(answer)


class ExitClock:
    """When a process exits, as seen by a thread blocked on its ``wait()``."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.at: float | None = None
        self._thread = threading.Thread(target=self._wait, daemon=True)
        self._thread.start()

    def _wait(self) -> None:
        self.process.wait()
        self.at = time.monotonic()

    def exited_at(self, timeout: float) -> float:
        self._thread.join(timeout)
        assert self.at is not None, f"still running {timeout} s later"
        return self.at


def wait_for_status(client: httpx.Client, path: str, status: int, deadline: float) -> float:
    """Poll ``path`` until it answers ``status``; the time it first did."""
    while client.get(path).status_code != status:
        assert time.monotonic() < deadline, f"{path} never answered {status}"
        time.sleep(0.05)
    return time.monotonic()


def test_sigterm_drains_then_exits_zero(
    store: tuple[ModelRegistry, str],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    registry, version = store
    model_uri = f"models:/{MODEL}/{version}"
    options = ("--drain-seconds", str(DRAIN_S), "--graceful-timeout", str(GRACE_S))
    with launch(registry.tracking_uri, model_uri, tmp_path, *options) as (process, url, log):
        load = Load(url, rows_payload(5), threads=LOAD_THREADS)
        with httpx.Client(base_url=url, timeout=5.0) as probe, load:
            load.wait_for(20)
            assert probe.get("/readyz").status_code == 200
            signalled = time.monotonic()  # taken first: the server's drain ends no earlier
            process.send_signal(signal.SIGTERM)
            clock = ExitClock(process)
            drain_end = signalled + DRAIN_S
            # Sent during the drain, still uploading when the server stops listening.
            slow: list[Answer] = []
            lock = threading.Lock()
            args = (url, drain_end + 1.0, slow, lock)
            senders = [threading.Thread(target=send_slowly, args=args) for _ in range(2)]
            for sender in senders:
                sender.start()
            draining = wait_for_status(probe, "/readyz", 503, deadline=drain_end)
            ready, v2_ready = [], []
            while time.monotonic() < drain_end - 1.5:
                ready.append(probe.get("/readyz").status_code)
                v2_ready.append(probe.get("/v2/health/ready").status_code)
                time.sleep(0.1)
            load.stop()  # before the drain ends: after it, new connections are refused
            for sender in senders:
                sender.join(timeout=30)
        exited = clock.exited_at(timeout=GRACE_S + 5)
        served_log = log.read_text(encoding="utf-8", errors="replace")
    assert process.returncode == 0, served_log[-2000:]
    assert set(ready) == {503} and len(ready) >= 1
    assert set(v2_ready) == {400}  # the protocol's "not ready"
    assert load.failures == []
    during_drain = [a for a in load.answers if a.started > draining]
    assert len(during_drain) >= LOAD_THREADS  # new requests were still served while draining
    assert [(a.failure, a.version) for a in slow] == [(None, version), (None, version)]
    assert min(a.ended for a in slow) > drain_end  # in flight when the server stopped listening
    assert drain_end <= exited < drain_end + GRACE_S
    record_property("requests_served_during_drain", len(during_drain))
    record_property(
        "slow_requests_ended_after_drain_s", [round(a.ended - drain_end, 2) for a in slow]
    )
    record_property("exit_after_sigterm_s", round(exited - signalled, 2))
