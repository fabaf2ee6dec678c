"""The measured points: each server at 16 and 64 connections, batches, offline, hot swap.

A point whose server option does not exist in the build under test is recorded as
``not available``; a server that fails to start or a load run that fails is recorded as
``failed`` with the reason. Neither stops the run.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.serving import targets
from benchmarks.serving.demo import DemoModel, mlflow_body, v2_pandas_body
from benchmarks.serving.load import LoadGenerator
from benchmarks.serving.targets import ServeFeatures, Server, TargetError

__all__ = ["BATCH_CONNECTIONS", "BATCH_ROWS", "CONNECTIONS", "Bench", "Variant", "variants"]

CONNECTIONS = (16, 64)
BATCH_ROWS = (100, 1000)
BATCH_CONNECTIONS = 4
NOT_AVAILABLE, FAILED, OK = "not available", "failed", "ok"
WARM_UP_S = 1.0


@dataclass(frozen=True)
class Variant:
    """One way of running ``conveyor serve``.

    Attributes:
        group: key in the results (``conveyor-onnx``, ``conveyor-pyfunc-batched``, ...).
        label: what the tables call it.
        options: extra ``conveyor serve`` options.
        missing: why it cannot run in this build (None: it can).
    """

    group: str
    label: str
    options: tuple[str, ...]
    missing: str | None = None


def variants(features: ServeFeatures) -> list[Variant]:
    """The ``conveyor serve`` variants, available or not in this build."""
    pyfunc = ("--runtime", "pyfunc") if features.runtime else ()
    no_runtime = None if features.runtime else "no --runtime option in this build"
    no_batching = None if features.batching else "no --batch-max-rows option in this build"
    batching_off = ("--batch-max-rows", "1") if features.batching else ()
    return [
        Variant("conveyor-onnx", "Conveyor, ONNX Runtime", ("--runtime", "onnx"), no_runtime),
        Variant(
            "conveyor-onnx-nomon",
            "Conveyor, ONNX Runtime, monitoring off",
            ("--runtime", "onnx", "--no-monitoring"),
            no_runtime,
        ),
        Variant(
            "conveyor-pyfunc-batched", "Conveyor, pipeline + micro-batching", pyfunc, no_batching
        ),
        Variant("conveyor-pyfunc", "Conveyor, pipeline, no batching", pyfunc + batching_off),
    ]


@dataclass
class Bench:
    """The state of one benchmark run: the load generator, the model, what was measured."""

    load: LoadGenerator
    model: DemoModel
    features: ServeFeatures
    seconds: float
    logs: Path
    points: list[dict[str, Any]] = field(default_factory=list)
    offline: list[dict[str, Any]] = field(default_factory=list)
    swap: dict[str, Any] = field(default_factory=dict)

    # -- recording ---------------------------------------------------------------------
    def record(self, group: str, label: str, workers: int, **values: Any) -> dict[str, Any]:
        """Append one point (status defaults to ok) and print a line about it."""
        point = {"group": group, "label": label, "workers": workers, "rows": 1, **values}
        point.setdefault("status", OK)
        self.points.append(point)
        if point["status"] == OK:
            print(
                f"  {label}, {workers}w, {point['connections']} conns, {point['rows']} rows:"
                f" {point['rps']:.0f} req/s p50 {point['p50_ms']:.1f} ms"
                f" p99 {point['p99_ms']:.1f} ms errors {point['non_2xx']}"
                f"+{point['socket_errors']}",
                flush=True,
            )
        else:
            print(f"  {label}, {workers}w: {point['status']}: {point.get('reason')}", flush=True)
        return point

    def skipped(self, group: str, label: str, workers: int, status: str, reason: str) -> None:
        """Record every connection count of a point as not run."""
        for connections in CONNECTIONS:
            self.record(
                group, label, workers, connections=connections, status=status, reason=reason[-600:]
            )

    def measure(
        self, server: Server, path: str, body: str, *, connections: int, count: bool = False
    ) -> dict[str, Any]:
        """One load run as a dict (``status: failed`` with the reason when it fails)."""
        try:
            result = self.load.run(
                server.url + path,
                body,
                connections=connections,
                seconds=self.seconds,
                count_versions=count,
            )
        except (RuntimeError, OSError) as exc:
            return {"connections": connections, "status": FAILED, "reason": str(exc)[-600:]}
        if result.requests == 0:
            reason = f"no response completed in {self.seconds:g} s (latency above the run length)"
            return {"connections": connections, "status": FAILED, "reason": reason}
        return {"connections": connections, **result.to_dict()}

    def warm_up(self, server: Server, path: str, body: str) -> None:
        """A short discarded run: connections open, first-request costs paid."""
        with contextlib.suppress(RuntimeError, OSError):
            self.load.run(server.url + path, body, connections=CONNECTIONS[0], seconds=WARM_UP_S)

    @contextlib.contextmanager
    def serving(
        self, group: str, label: str, workers: int, start: Callable[[], Any]
    ) -> Iterator[Server | None]:
        """Start a server; on failure record the point as failed and yield None."""
        print(f"{label}, {workers} worker(s): starting", flush=True)
        with contextlib.ExitStack() as stack:
            try:
                server: Server | None = stack.enter_context(start())
            except TargetError as exc:
                self.skipped(group, label, workers, FAILED, str(exc))
                server = None
            yield server

    # -- points ------------------------------------------------------------------------
    def single_rows(
        self,
        server: Server,
        group: str,
        label: str,
        workers: int,
        *,
        path: str,
        body: str,
        **extra: Any,
    ) -> None:
        """Single-row requests at each connection count, after a warm-up."""
        self.warm_up(server, path, body)
        for connections in CONNECTIONS:
            self.record(
                group,
                label,
                workers,
                **extra,
                **self.measure(server, path, body, connections=connections),
            )

    def hello(self) -> None:
        """The bare ASGI app: the ceiling of the HTTP stack (also with TCP_NODELAY, 2 workers)."""
        body = mlflow_body(self.model.rows.head(1))
        runs = [("hello", "bare ASGI hello", 1, False), ("hello", "bare ASGI hello", 2, False)]
        runs.append(("hello-nodelay", "bare ASGI hello, TCP_NODELAY socket", 2, True))
        for group, label, workers, nodelay in runs:
            start = functools.partial(
                targets.hello_app, workers=workers, logs=self.logs, nodelay=nodelay
            )
            with self.serving(group, label, workers, start) as server:
                if server is not None:
                    self.single_rows(server, group, label, workers, path="/invocations", body=body)

    def conveyor(self, *, batched: bool) -> None:
        """Every ``conveyor serve`` variant at 1 and 2 workers; batches on 2 workers."""
        body = mlflow_body(self.model.rows.head(1))
        primary_pyfunc = next(
            v
            for v in variants(self.features)
            if v.group.startswith("conveyor-pyfunc") and v.missing is None
        )
        for variant in variants(self.features):
            for workers in (1, 2):
                if variant.missing is not None:
                    self.skipped(
                        variant.group, variant.label, workers, NOT_AVAILABLE, variant.missing
                    )
                    continue
                self._conveyor_variant(
                    variant,
                    workers,
                    body,
                    batches=batched
                    and workers == 2
                    and variant.group in ("conveyor-onnx", primary_pyfunc.group),
                )

    def _conveyor_variant(
        self, variant: Variant, workers: int, body: str, *, batches: bool
    ) -> None:
        start = lambda: targets.conveyor_serve(  # noqa: E731
            self.model.config, workers=workers, options=variant.options, logs=self.logs
        )
        with self.serving(variant.group, variant.label, workers, start) as server:
            if server is None:
                if batches:
                    self._batch_skipped(variant, FAILED, "server did not start")
                return
            runtime = self._runtime(server)
            self.single_rows(
                server,
                variant.group,
                variant.label,
                workers,
                path="/invocations",
                body=body,
                runtime=runtime,
            )
            if batches:
                self.batches(server, variant, runtime)

    def _runtime(self, server: Server) -> str:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            meta = httpx.get(f"{server.url}/v2/models/{self.model.name}", timeout=5).json()
            return str(meta["parameters"]["runtime"])
        return "unknown"

    def batches(self, server: Server, variant: Variant, runtime: str) -> None:
        """Requests of 100 and 1,000 rows at 4 connections: rows per second."""
        for rows in BATCH_ROWS:
            body = mlflow_body(self.model.rows.head(rows))
            point = self.measure(server, "/invocations", body, connections=BATCH_CONNECTIONS)
            if point.get("status", OK) == OK:
                point["rows_per_s"] = point["rps"] * rows
            self.record(variant.group, variant.label, 2, **{**point, "rows": rows}, runtime=runtime)

    def _batch_skipped(self, variant: Variant, status: str, reason: str) -> None:
        for rows in BATCH_ROWS:
            self.record(
                variant.group,
                variant.label,
                2,
                connections=BATCH_CONNECTIONS,
                rows=rows,
                status=status,
                reason=reason,
            )

    def mlflow(self) -> None:
        """``mlflow models serve`` (2 workers) on the champion version."""
        uri = f"models:/{self.model.name}/{self.model.champion}"
        start = lambda: targets.mlflow_serve(  # noqa: E731
            self.model.tracking_uri, uri, workers=2, logs=self.logs
        )
        body = mlflow_body(self.model.rows.head(1))
        with self.serving("mlflow", "mlflow models serve", 2, start) as server:
            if server is not None:
                self.single_rows(
                    server, "mlflow", "mlflow models serve", 2, path="/invocations", body=body
                )

    def mlserver(self, work: Path) -> None:
        """Seldon MLServer + mlserver-sklearn, adaptive batching, V2 with the pandas codec."""
        import joblib

        label = "MLServer 1.7.1, adaptive batching"
        try:
            mlserver_bin = targets.ensure_mlserver()
        except (TargetError, OSError, ValueError) as exc:
            self.skipped("mlserver", label, targets.MLSERVER_WORKERS, FAILED, str(exc))
            return
        folder = work / "mlserver" / "model"
        folder.mkdir(parents=True, exist_ok=True)
        pipeline = self.model.registry().load_pipeline(
            f"models:/{self.model.name}/{self.model.champion}"
        )
        joblib.dump(pipeline, folder / "model.joblib")
        name = "model"
        start = lambda: targets.mlserver(  # noqa: E731
            mlserver_bin, folder / "model.joblib", model_name=name, logs=self.logs
        )
        body = v2_pandas_body(self.model.rows.head(1))
        with self.serving("mlserver", label, targets.MLSERVER_WORKERS, start) as server:
            if server is not None:
                self.single_rows(
                    server,
                    "mlserver",
                    label,
                    targets.MLSERVER_WORKERS,
                    path=f"/v2/models/{name}/infer",
                    body=body,
                )
