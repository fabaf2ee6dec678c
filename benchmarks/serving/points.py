"""The matrix of targets, and one round's measurement of one target.

A target is one server setting (or the in-process baseline, or the hot swap); each round
starts it afresh, warms it up, measures its points and stops it. A target whose server
option does not exist in the build under test is recorded as ``not available``; a server
that fails to start or a load run that fails is recorded as ``failed`` with the reason.
Neither stops the run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.serving import targets
from benchmarks.serving.demo import DemoModel, PeerModels, mlflow_body, v2_pandas_body
from benchmarks.serving.load import LoadGenerator
from benchmarks.serving.offline import InProcess
from benchmarks.serving.swap import hot_swap
from benchmarks.serving.targets import ServeFeatures, Server, TargetError

__all__ = [
    "BATCH_CONNECTIONS",
    "BATCH_ROWS",
    "CONNECTIONS",
    "GOAL_CONNECTIONS",
    "IN_PROCESS_S",
    "WARM_UP_S",
    "Bench",
    "Target",
    "batching_options",
    "describe",
    "matrix",
]

CONNECTIONS = (16, 64)
GOAL_CONNECTIONS = 16
BATCH_ROWS = (100, 1000)
BATCH_CONNECTIONS = 4
NOT_AVAILABLE, FAILED, OK = "not available", "failed", "ok"
WARM_UP_S = 1.0
IN_PROCESS_S = 3.0  # most seconds per in-process measure


@dataclass(frozen=True)
class Target:
    """One thing measured in every round.

    Attributes:
        key: its name in the results (``conveyor-onnx-2w``, ``mlflow-2w``, ...).
        label: what the tables call it.
        kind: ``hello``, ``conveyor``, ``mlflow``, ``mlserver``, ``in-process`` or ``swap``.
        part: the ``--skip`` name that leaves it out.
        workers: server processes answering requests (0: no server).
        connections: the connection counts of its single-row points.
        options: extra ``conveyor serve`` options.
        batches: also requests of :data:`BATCH_ROWS` rows.
        missing: why it cannot run in this build (None: it can).
    """

    key: str
    label: str
    kind: str
    part: str
    workers: int = 0
    connections: tuple[int, ...] = ()
    options: tuple[str, ...] = ()
    batches: bool = False
    missing: str | None = None


def batching_options(features: ServeFeatures) -> tuple[str, ...]:
    """``conveyor serve``'s micro-batching limits, the same as MLServer's (none if the
    build has no micro-batching)."""
    return targets.BATCHING_OPTIONS if features.batching else ()


def matrix(features: ServeFeatures) -> list[Target]:
    """What the goals and the comparisons need, and no more (``make bench`` has a budget)."""
    no_runtime = None if features.runtime else "no --runtime option in this build"
    no_batching = None if features.batching else "no --batch-max-rows option in this build"
    batching = batching_options(features)
    batching_off = ("--batch-max-rows", "1") if features.batching else ()
    pyfunc = ("--runtime", "pyfunc") if features.runtime else ()
    onnx = ("--runtime", "onnx", *batching)
    goal, peers_workers = (GOAL_CONNECTIONS,), targets.MLSERVER_WORKERS
    mlserver = f"MLServer {targets.MLSERVER_PINS[0].split('==')[1]}, adaptive batching"
    return [
        Target("hello-1w", "bare ASGI hello", "hello", "hello", 1, goal),
        Target("hello-2w", "bare ASGI hello", "hello", "hello", 2, CONNECTIONS),
        _conveyor("conveyor-onnx-1w", "ONNX Runtime", 1, goal, onnx, missing=no_runtime),
        _conveyor("conveyor-onnx-2w", "ONNX Runtime", 2, CONNECTIONS, onnx, missing=no_runtime),
        _conveyor(
            "conveyor-pipeline-batched-2w",
            "pipeline + micro-batching",
            2,
            CONNECTIONS,
            (*pyfunc, *batching),
            missing=no_batching,
        ),
        _conveyor(
            "conveyor-pipeline-2w",
            "pipeline, no batching",
            2,
            CONNECTIONS,
            (*pyfunc, *batching_off),
        ),
        Target("mlflow-2w", "mlflow models serve", "mlflow", "mlflow", 2, CONNECTIONS),
        Target("mlserver-2w", mlserver, "mlserver", "mlserver", peers_workers, CONNECTIONS),
        Target("in-process", "in-process prediction", "in-process", "batches"),
        Target("swap", "hot swap (1 worker)", "swap", "swap", 1),
    ]


def _conveyor(
    key: str,
    what: str,
    workers: int,
    connections: tuple[int, ...],
    options: tuple[str, ...],
    *,
    missing: str | None = None,
) -> Target:
    """A ``conveyor serve`` target; on 2 workers, the batched requests too."""
    return Target(
        key,
        f"Conveyor, {what}",
        "conveyor",
        "conveyor",
        workers,
        connections,
        options,
        batches=workers == 2 and "no batching" not in what,
        missing=missing,
    )


def describe(target: Target) -> dict[str, Any]:
    """The target as recorded in the results."""
    return asdict(target)


@dataclass
class Bench:
    """What every round measures with: the load generator, the model, its peer copies.

    Attributes:
        load: the load generator.
        model: the served model and its rows.
        features: the ``conveyor serve`` options of the build under test.
        seconds: seconds per point.
        logs: where server logs go.
        peers: the peers' copies of the pipeline, or why there are none.
        mlserver_bin: MLServer's executable, or why there is none.
        in_process: the in-process models, or why there are none.
    """

    load: LoadGenerator
    model: DemoModel
    features: ServeFeatures
    seconds: float
    logs: Path
    peers: PeerModels | str
    mlserver_bin: Path | str
    in_process: InProcess | str

    def run(self, target: Target) -> dict[str, Any]:
        """One round of ``target``: its points, or ``status`` and ``reason``."""
        if target.missing is not None:
            return {"status": NOT_AVAILABLE, "reason": target.missing}
        if target.kind == "in-process":
            if isinstance(self.in_process, str):
                return {"status": FAILED, "reason": self.in_process}
            seconds = min(self.seconds, IN_PROCESS_S)
            return {"status": OK, "points": self.in_process.measure(BATCH_ROWS, seconds)}
        if target.kind == "swap":
            options = batching_options(self.features)
            return hot_swap(
                self.model, self.load, seconds=self.seconds, logs=self.logs, options=options
            )
        try:
            start = self._starter(target)
        except TargetError as exc:
            return {"status": FAILED, "reason": str(exc)[-600:]}
        return self._serve(target, start)

    def _starter(self, target: Target) -> Callable[[], contextlib.AbstractContextManager[Server]]:
        logs, workers = self.logs, target.workers
        if target.kind == "hello":
            return lambda: targets.hello_app(workers=workers, logs=logs)
        if target.kind == "conveyor":
            config, options = self.model.config, target.options
            return lambda: targets.conveyor_serve(
                config, workers=workers, options=options, logs=logs
            )
        if isinstance(self.peers, str):
            raise TargetError(f"the peers' model copies could not be made: {self.peers}")
        if target.kind == "mlflow":
            folder = self.peers.mlflow_folder
            return lambda: targets.mlflow_serve(folder, workers=workers, logs=logs)
        if isinstance(self.mlserver_bin, str):
            raise TargetError(self.mlserver_bin)
        binary, peers = self.mlserver_bin, self.peers
        return lambda: targets.mlserver(
            binary, peers.joblib_file, model_name="model", code=peers.code_folder, logs=logs
        )

    def _serve(
        self, target: Target, start: Callable[[], contextlib.AbstractContextManager[Server]]
    ) -> dict[str, Any]:
        path, body = self._request(target, rows=1)
        started = time.perf_counter()
        try:
            with start() as server:
                record: dict[str, Any] = {
                    "status": OK,
                    "start_s": round(time.perf_counter() - started, 1),
                    "runtime": self._runtime(server) if target.kind == "conveyor" else None,
                    "points": [],
                }
                self._warm_up(server, path, body)
                for connections in target.connections:
                    point = self._measure(server, path, body, connections=connections)
                    record["points"].append({"rows": 1, **point})
                    _say(target, point)
                if target.batches:
                    record["points"] += self._batches(server, target)
                record["access_log_lines"] = server.access_log_lines()
        except TargetError as exc:
            return {"status": FAILED, "reason": str(exc)[-600:]}
        return record

    def _request(self, target: Target, *, rows: int) -> tuple[str, str]:
        frame = self.model.rows.head(rows)
        if target.kind == "mlserver":
            return "/v2/models/model/infer", v2_pandas_body(frame)
        return "/invocations", mlflow_body(frame)

    def _batches(self, server: Server, target: Target) -> list[dict[str, Any]]:
        """Requests of 100 and 1,000 rows at 4 connections: rows per second."""
        points = []
        for rows in BATCH_ROWS:
            path, body = self._request(target, rows=rows)
            point = {
                "rows": rows,
                **self._measure(server, path, body, connections=BATCH_CONNECTIONS),
            }
            if point.get("status", OK) == OK:
                point["rows_per_s"] = point["rps"] * rows
            points.append(point)
            _say(target, point)
        return points

    def _measure(self, server: Server, path: str, body: str, *, connections: int) -> dict[str, Any]:
        """One load run as a dict (``status: failed`` with the reason when it fails)."""
        try:
            result = self.load.run(
                server.url + path, body, connections=connections, seconds=self.seconds
            )
        except (RuntimeError, OSError) as exc:
            return {"connections": connections, "status": FAILED, "reason": str(exc)[-600:]}
        if result.requests == 0:
            reason = f"no response completed in {self.seconds:g} s (latency above the run length)"
            return {"connections": connections, "status": FAILED, "reason": reason}
        return {"connections": connections, "status": OK, **result.to_dict()}

    def _warm_up(self, server: Server, path: str, body: str) -> None:
        """A short discarded run: connections open, first-request costs paid."""
        with contextlib.suppress(RuntimeError, OSError):
            self.load.run(server.url + path, body, connections=GOAL_CONNECTIONS, seconds=WARM_UP_S)

    def _runtime(self, server: Server) -> str:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            meta = httpx.get(f"{server.url}/v2/models/{self.model.name}", timeout=5).json()
            return str(meta["parameters"]["runtime"])
        return "unknown"


def _say(target: Target, point: dict[str, Any]) -> None:
    head = f"    {point['connections']} conns, {point.get('rows', 1)} rows:"
    if point.get("status") != OK:
        print(f"{head} {point['status']}: {point.get('reason')}", flush=True)
        return
    print(
        f"{head} {point['rps']:,.0f} req/s, p50 {point['p50_ms']:.1f} ms, "
        f"p99 {point['p99_ms']:.1f} ms, errors {point['non_2xx']}+{point['socket_errors']}",
        flush=True,
    )
