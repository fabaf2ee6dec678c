"""HTTP load generation: wrk with a Lua script (POST body, percentiles as JSON), or Python.

wrk is the load generator of record. The Lua script's ``done`` hook prints one JSON line
(``WRK_JSON {...}``) with the request count, duration, error counters and latency
percentiles, so nothing depends on wrk's human-readable text. The Python generator
(asyncio + httpx) exists only for machines without wrk and is much weaker: its numbers
are not comparable with wrk's.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["LoadGenerator", "LoadResult", "find_wrk"]

WRK_TIMEOUT = "30s"  # slow peers must show as slow, not as timeouts

_LUA = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%(body)s]==]
%(extra)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests": %%d, "duration_us": %%d, "connect": %%d, '
    .. '"read": %%d, "write": %%d, "status": %%d, "timeout": %%d, "p50_us": %%d, '
    .. '"p90_us": %%d, "p99_us": %%d, "max_us": %%d, "versions": %%s}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    versions_json()))
end
"""

# Counting the model version of each response (hot swap): per-thread tables read back in done.
_COUNT_VERSIONS = """\
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) versions = {} end
function response(status, headers, body)
  local v = headers["x-model-version"] or headers["X-Model-Version"] or "none"
  if status >= 400 then v = "error" end
  versions[v] = (versions[v] or 0) + 1
end
function versions_json()
  local total = {}
  for _, t in ipairs(threads) do
    for k, n in pairs(t:get("versions") or {}) do total[k] = (total[k] or 0) + n end
  end
  local parts = {}
  for k, n in pairs(total) do table.insert(parts, string.format('"%s": %d', k, n)) end
  return "{" .. table.concat(parts, ", ") .. "}"
end
"""
_NO_VERSIONS = 'function versions_json() return "{}" end'


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured.

    Attributes:
        requests: completed requests.
        seconds: measured duration.
        rps: requests per second.
        p50_ms, p90_ms, p99_ms, max_ms: latency percentiles (milliseconds).
        non_2xx: responses with status >= 400.
        socket_errors: connect, read, write errors and timeouts.
        versions: responses per ``X-Model-Version`` (only when counted).
    """

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    versions: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


def find_wrk() -> str | None:
    """Path of the wrk binary, or None."""
    return shutil.which("wrk")


@dataclass(frozen=True)
class LoadGenerator:
    """Sends one POST body at a fixed number of connections for a duration.

    Attributes:
        wrk: the wrk binary; None selects the Python generator.
        threads: wrk threads (the machine has 2 cores shared with the server: 1 by default).
    """

    wrk: str | None
    threads: int = 1

    def describe(self) -> str:
        """One line naming the generator, as recorded with the results."""
        if self.wrk is None:
            return "Python asyncio + httpx generator (wrk not installed; not comparable)"
        version = subprocess.run(
            [self.wrk, "--version"], capture_output=True, text=True, check=False
        )
        first = (version.stdout or version.stderr).splitlines()[0]
        return f"{first.split(' [')[0]}, {self.threads} thread(s)"

    def run(
        self,
        url: str,
        body: str,
        *,
        connections: int,
        seconds: float,
        count_versions: bool = False,
    ) -> LoadResult:
        """Load ``url`` with POSTs of ``body`` (JSON).

        Args:
            url: the full endpoint URL.
            body: the request body.
            connections: concurrent connections.
            seconds: how long to send.
            count_versions: count responses per ``X-Model-Version`` header.

        Returns:
            The measured throughput, latency and errors.
        """
        if self.wrk is None:
            return asyncio.run(_python_load(url, body, connections=connections, seconds=seconds))
        return self._wrk(url, body, connections, seconds, count_versions)

    def _wrk(
        self, url: str, body: str, connections: int, seconds: float, count_versions: bool
    ) -> LoadResult:
        assert self.wrk is not None
        extra = _COUNT_VERSIONS if count_versions else _NO_VERSIONS
        with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
            script = Path(tmp) / "post.lua"
            script.write_text(_LUA % {"body": body, "extra": extra}, encoding="utf-8")
            threads = max(1, min(self.threads, connections))
            argv = [self.wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s"]
            argv += ["--timeout", WRK_TIMEOUT, "--latency", "-s", str(script), url]
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=seconds + 120, check=False
            )
        return parse_wrk(done.stdout, stderr=done.stderr)


def parse_wrk(stdout: str, *, stderr: str = "") -> LoadResult:
    """The result of a wrk run from its output (the ``WRK_JSON`` line of our Lua script).

    Raises:
        RuntimeError: wrk printed no result line.
    """
    match = re.search(r"^WRK_JSON (\{.*\})$", stdout, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no result: {stdout[-500:]} {stderr[-500:]}")
    raw = json.loads(match.group(1))
    seconds = raw["duration_us"] / 1e6
    return LoadResult(
        requests=raw["requests"],
        seconds=seconds,
        rps=raw["requests"] / seconds if seconds else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        non_2xx=raw["status"],
        socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        versions={str(k): int(v) for k, v in raw["versions"].items()},
    )


async def _python_load(url: str, body: str, *, connections: int, seconds: float) -> LoadResult:
    import httpx

    latencies: list[float] = []
    errors = {"status": 0, "socket": 0}
    headers = {"Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    started = time.perf_counter()
    deadline = started + seconds
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    response = await client.post(url, content=body, headers=headers)
                except httpx.HTTPError:
                    errors["socket"] += 1
                    continue
                latencies.append(time.perf_counter() - sent)
                errors["status"] += response.status_code >= 400

        await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies) or [0.0]

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return LoadResult(
        requests=len(latencies),
        seconds=elapsed,
        rps=len(latencies) / elapsed,
        p50_ms=pct(0.50),
        p90_ms=pct(0.90),
        p99_ms=pct(0.99),
        max_ms=ordered[-1] * 1000,
        non_2xx=errors["status"],
        socket_errors=errors["socket"],
        versions={},
    )
