"""Steady prediction traffic that records every request: when, how long, and how it ended.

Each client is a thread with one keep-alive connection that sends a request every
``1 / rate`` seconds (paced, not as fast as it can: the rollout is measured at a load the
machine carries, so latency reflects the rollout rather than a saturated CPU). A request
that got no answer, or any status but 200, counts as failed; the connection is then
opened again. With ``more_rows``, each client sends those row sets in turn after
``rows`` (varied inputs for a long run). Used by the rollout tests, by
``benchmarks/rollout.py`` and by ``benchmarks/soak.py``.
"""

from __future__ import annotations

import http.client
import http.cookies
import json
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Sample", "Traffic", "cookie_header", "percentile"]


@dataclass(frozen=True)
class Sample:
    """One request: start (monotonic seconds), latency, status (None: no answer); the
    ``X-Request-Id`` answered, which row set was sent (0: ``rows``), and the cookies the
    answer set, as a ``Cookie`` header sends them back (None: it set none; behind
    HAProxy, ``conveyor_replica`` names the replica that answered)."""

    started: float
    latency: float
    status: int | None
    version: str | None
    error: str | None = None
    request_id: str | None = None
    body: int = 0
    cookie: str | None = None

    @property
    def failed(self) -> bool:
        return self.status != 200


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank; an empty list is an error, not zero."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def cookie_header(set_cookies: list[str]) -> str | None:
    """The ``Cookie`` header that sends back the cookies of these ``Set-Cookie`` headers
    (None: they set none; a cookie being deleted, with an empty value, is left out)."""
    jar: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
    for header in set_cookies:
        jar.load(header)
    pairs = [f"{name}={morsel.value}" for name, morsel in jar.items() if morsel.value]
    return "; ".join(pairs) or None


class Traffic:
    """``clients`` threads, each sending ``rate`` requests per second to ``host:port``."""

    def __init__(
        self,
        host: str,
        port: int,
        rows: list[dict[str, Any]],
        *,
        clients: int = 4,
        rate: float = 25.0,
        path: str = "/invocations",
        more_rows: Sequence[list[dict[str, Any]]] = (),
    ) -> None:
        self.host, self.port, self.path = host, port, path
        self.bodies = [
            json.dumps({"dataframe_records": r}).encode("utf-8") for r in (rows, *more_rows)
        ]
        self.body = self.bodies[0]
        self.clients, self.interval = clients, 1.0 / rate
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Traffic:
        for index in range(self.clients):
            thread = threading.Thread(target=self._client, args=(index,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=70)

    def between(self, start: float, end: float) -> list[Sample]:
        """The requests that started in [start, end)."""
        with self._lock:
            return [s for s in self.samples if start <= s.started < end]

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=60)

    def _client(self, index: int) -> None:
        connection = self._connect()
        headers = {"Content-Type": "application/json"}
        # clients start spread over one interval, so the load is even from the first second
        next_at = time.monotonic() + self.interval * index / self.clients
        sent = index  # each client starts at another row set
        while not self._stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_at = max(next_at + self.interval, time.monotonic())
            body, sent = sent % len(self.bodies), sent + 1
            started = time.monotonic()
            try:
                connection.request("POST", self.path, body=self.bodies[body], headers=headers)
                answer = connection.getresponse()
                answer.read()
                sample = Sample(
                    started,
                    time.monotonic() - started,
                    answer.status,
                    answer.getheader("X-Model-Version"),
                    request_id=answer.getheader("X-Request-Id"),
                    body=body,
                    cookie=cookie_header(answer.headers.get_all("Set-Cookie") or []),
                )
                if answer.getheader("Connection", "").lower() == "close":
                    connection.close()
                    connection = self._connect()
            except (OSError, http.client.HTTPException) as exc:
                latency = time.monotonic() - started
                sample = Sample(started, latency, None, None, repr(exc), body=body)
                connection.close()
                connection = self._connect()
            with self._lock:
                self.samples.append(sample)
        connection.close()
