"""A real model in a real MLflow store, served by a real `conveyor serve` in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.samples import Sample
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from conveyor.registry.store import ModelRegistry

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))
MODEL = "serve-test"
FEATURES = ["age", "hours", "job"]
TARGET = "income"
STARTUP_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Served:
    """The running server and what it serves."""

    url: str
    client: httpx.Client
    offline: Any  # the same version loaded through ModelRegistry.load_pipeline
    version: str
    run_id: str
    rows: pd.DataFrame
    tracking_uri: str


def make_table(n: int = 240, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 12, n).round(1),
            "hours": rng.normal(38, 6, n).round(1),
            "job": pd.Series(rng.choice(["clerk", "nurse", "smith"], n), dtype="str"),
        }
    )
    label = (frame["age"] > 40) ^ (frame["job"] == "nurse")
    frame[TARGET] = pd.Series(np.where(label, ">50K", "<=50K"), dtype="str")
    return frame


def fit_pipeline(table: pd.DataFrame) -> Pipeline:
    """Numeric columns imputed (NaN allowed); the categorical column has no imputer."""
    import lightgbm

    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    pre = ColumnTransformer(
        [
            ("num", numeric, ["age", "hours"]),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["job"]),
        ],
        sparse_threshold=0.0,
    )
    model = lightgbm.LGBMClassifier(n_estimators=20, min_child_samples=5, verbose=-1)
    return Pipeline([("preprocess", pre), ("model", model)]).fit(table[FEATURES], table[TARGET])


def register_model(
    registry: ModelRegistry,
    table: pd.DataFrame,
    artifacts: Path,
    *,
    name: str = MODEL,
    key: str = "serve-1",
    promote: bool = True,
) -> str:
    report = artifacts / "metrics.json"
    report.write_text('{"accuracy": 0.9}', encoding="utf-8")
    run_id = registry.log_training_run(
        experiment=name,
        run_name=key,
        params={"model": "lightgbm"},
        metrics={"accuracy": 0.9},
        artifacts=[report],
        pipeline=fit_pipeline(table),
        input_example=table[FEATURES].head(5),
        dataset=table,
        dataset_name=name,
        dataset_source="synthetic",
        dataset_digest="md5:serve",
        target=TARGET,
        tags={},
    )
    version = registry.register(name=name, run_id=run_id, key=key, tags={}).version
    if promote:
        registry.promote(name, version)
    return version


def register_conveyor_model(
    registry: ModelRegistry,
    table: pd.DataFrame,
    *,
    name: str,
    key: str,
    onnx: bool = False,
    profile: bool = False,
    n_estimators: int = 20,
) -> tuple[Any, str]:
    """Conveyor's own pipeline (LightGBM) fitted on ``table``, registered and promoted,
    optionally with its verified ONNX export and its training profile, as the register
    step stores them. Returns the fitted pipeline and the version."""
    from conveyor.config import ModelSpec
    from conveyor.data.schema import TableSchema
    from conveyor.monitoring.profile import profile_model
    from conveyor.registry.onnx_export import export_onnx
    from conveyor.registry.profiles import log_reference_profile
    from conveyor.registry.tracking import onnx_tags
    from conveyor.training.train import build_pipeline

    schema = TableSchema(target=TARGET, numeric=("age", "hours"), categorical=("job",))
    params = {"n_estimators": n_estimators, "verbose": -1, "n_jobs": 1}
    pipeline = build_pipeline(
        ModelSpec(type="lightgbm", params=params), schema=schema, task="binary", seed=0
    )
    pipeline.fit(table[FEATURES], table[TARGET])
    export = None
    if onnx:
        export = export_onnx(pipeline, table[FEATURES].tail(100), tolerance=1e-4, parity_rows=100)
        assert export.status == "verified", export.reason
    tags = onnx_tags(export) if export is not None else {}
    run_id = registry.log_training_run(
        experiment=name,
        run_name=key,
        params={"model": "lightgbm"},
        metrics={"roc_auc": 0.9},
        artifacts=[],
        pipeline=pipeline,
        input_example=table[FEATURES].head(5),
        dataset=table,
        dataset_name=name,
        dataset_source="synthetic",
        dataset_digest=f"md5:{key}",
        target=TARGET,
        tags=tags,
        onnx=export,
    )
    if profile:
        reference = profile_model(pipeline, table[FEATURES], schema, task="binary")
        log_reference_profile(registry, run_id, reference.to_dict())
    version = registry.register(name=name, run_id=run_id, key=key, tags=tags).version
    registry.promote(name, version)
    return pipeline, version


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CONVEYOR_"))}
    return {**env, "COLUMNS": "200"}


def wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = log.read_text(encoding="utf-8", errors="replace")[-2000:]
            pytest.fail(f"conveyor serve exited with {process.returncode}: {err}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"conveyor serve was not ready within {STARTUP_TIMEOUT_S} s")


@pytest.fixture(scope="package")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelRegistry, str]:
    folder = tmp_path_factory.mktemp("serving-store")
    registry = ModelRegistry(f"sqlite:///{folder / 'mlflow.db'}")
    version = register_model(registry, make_table(), folder)
    return registry, version


@contextmanager
def launch(
    tracking_uri: str,
    model_uri: str,
    folder: Path,
    *options: str,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """`conveyor serve` on a free port until ready; stopped (SIGTERM, then kill) at exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [CONVEYOR, "serve", "--model-uri", model_uri, "--tracking-uri", tracking_uri]
    argv += ["--port", str(port), *options]
    log = folder / f"serve-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv, cwd=folder, env={**clean_env(), **(env or {})}, stdout=sink, stderr=sink
        )
    try:
        wait_ready(process, url, log)
        yield process, url, log
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


@pytest.fixture(scope="package")
def served(
    store: tuple[ModelRegistry, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """`conveyor serve` on a free port; stopped (SIGTERM, then kill) at teardown."""
    registry, version = store
    options = ["--max-batch-rows", "500", "--max-body-bytes", "200000"]
    options += ["--poll-interval", "0", "--drain-seconds", "0"]  # nothing moves; stop at once
    folder = tmp_path_factory.mktemp("serve-cwd")
    model_uri = f"models:/{MODEL}@champion"
    with launch(registry.tracking_uri, model_uri, folder, *options) as (_, url, _):
        offline = registry.load_pipeline(f"models:/{MODEL}/{version}")
        rows = make_table(n=40, seed=99)[FEATURES]
        with httpx.Client(base_url=url, timeout=30.0) as client:
            run_id = registry.get_version(MODEL, version).run_id
            yield Served(url, client, offline, version, run_id, rows, registry.tracking_uri)


@dataclass(frozen=True)
class Answer:
    """One prediction request as the load saw it."""

    started: float  # time.monotonic() when sent
    ended: float
    version: str  # X-Model-Version ("" on failure)
    failure: str | None = None


class Load:
    """Threads sending one prediction after another until stopped (at most ``max_seconds``)."""

    def __init__(
        self, url: str, payload: dict[str, Any], *, threads: int = 4, max_seconds: float = 60.0
    ) -> None:
        self.url, self.payload, self.max_seconds = url, payload, max_seconds
        self.answers: list[Answer] = []
        self._answered = threading.Condition()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    @property
    def failures(self) -> list[str]:
        return [a.failure for a in self.answers if a.failure is not None]

    def wait_until(self, check: Callable[[list[Answer]], bool], timeout: float = 60.0) -> None:
        """Block until ``check`` holds for the answers so far."""
        with self._answered:
            if not self._answered.wait_for(lambda: check(self.answers), timeout=timeout):
                count, failures = len(self.answers), self.failures[:3]
                raise AssertionError(f"not met in {timeout} s by {count} answers ({failures=})")

    def wait_for(self, count: int, *, started_after: float = float("-inf")) -> None:
        """Block until ``count`` answers sent after ``started_after`` are in."""
        self.wait_until(lambda answers: sum(a.started > started_after for a in answers) >= count)

    def _send(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                started = time.monotonic()
                try:
                    response = client.post("/invocations", json=self.payload)
                except httpx.HTTPError as exc:
                    answer = Answer(started, time.monotonic(), "", f"{type(exc).__name__}: {exc}")
                else:
                    failure = None if response.status_code == 200 else response.text[:300]
                    version = response.headers.get("x-model-version", "")
                    answer = Answer(started, time.monotonic(), version, failure)
                with self._answered:
                    self.answers.append(answer)
                    self._answered.notify_all()


def rows_payload(n: int, seed: int = 5) -> dict[str, Any]:
    rows = make_table(n=n, seed=seed)[FEATURES]
    return {"dataframe_split": {"columns": FEATURES, "data": rows.values.tolist()}}


def metric_samples(url: str, name: str, **labels: str) -> list[Sample]:
    """The samples named ``name`` on ``/metrics`` whose labels include ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=5.0).text
    return [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]


def metric_value(url: str, name: str, *, default: float | None = None, **labels: str) -> float:
    """The value of the one sample on ``/metrics`` named ``name`` whose labels include
    ``labels``; ``default`` when there is none and a default is given."""
    found = metric_samples(url, name, **labels)
    if not found and default is not None:
        return default
    assert len(found) == 1, f"{len(found)} samples of {name} with labels {labels}: {found}"
    return float(found[0].value)
