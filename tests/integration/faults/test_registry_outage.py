"""A tracking server that is down or dies mid-run: exit 75, nothing half registered, retry works.

A real ``mlflow server`` (SQLite backend, proxied artifacts) and real ``conveyor run``
processes; the server is SIGKILLed once the register step created its MLflow run (it is
logging into it; the version comes after).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from pathlib import Path

import pytest
from tests.integration.faults.conftest import (
    MlflowServer,
    clean_env,
    conveyor,
    free_port,
    lean_project,
    start,
    step_status,
    wait_for,
)

from conveyor.errors import RegistryUnavailableError
from conveyor.registry.store import ModelRegistry, ModelVersionInfo
from conveyor.registry.versions import KEY_TAG
from conveyor.settings import Settings, get_settings

pytestmark = pytest.mark.integration

NAME = "churn-demo"
# Fail fast in tests: one retry, no backoff (the defaults bound a call to about a minute).
KEY = "a-signing-key-for-the-tracking-server"
QUICK = {"CONVEYOR_REGISTRY_RETRIES": "1", "CONVEYOR_REGISTRY_BACKOFF": "0"}


def test_a_registry_that_refuses_connections_exits_75_naming_it(tmp_path: Path) -> None:
    project = tmp_path / "demo"
    config = str(lean_project(project))
    down = f"http://127.0.0.1:{free_port()}"
    done = conveyor(
        "run",
        "-c",
        config,
        cwd=tmp_path,
        env=clean_env(MLFLOW_TRACKING_URI=down, CONVEYOR_SIGNING_KEY=KEY, **QUICK),
    )
    assert done.returncode == 75, done.stdout + done.stderr
    assert f"the MLflow registry at {down} did not answer" in done.stderr
    assert "a retry may succeed" in done.stderr
    assert "Traceback" not in done.stderr


def test_registry_calls_give_up_within_bounds_with_a_retryable_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # MLflow's own defaults (120 s timeout, 7 retries, backoff factor 2) would keep a
    # refused call retrying for minutes; Conveyor's settings bound it.
    for name, value in QUICK.items():
        monkeypatch.setenv(name, value)
    for name in Settings().mlflow_http_environment():
        monkeypatch.setenv(name, "")  # removed again after the test, whatever it sets
        monkeypatch.delenv(name)
    get_settings.cache_clear()
    try:
        registry = ModelRegistry(f"http://127.0.0.1:{free_port()}")
        started = time.monotonic()
        with pytest.raises(RegistryUnavailableError, match="did not answer") as err:
            registry.get_alias(NAME, "champion")
    finally:
        get_settings.cache_clear()
    assert time.monotonic() - started < 30
    assert err.value.exit_code == 75


def test_a_server_killed_during_registration_leaves_nothing_half_registered(
    tmp_path: Path, mlflow_server: MlflowServer
) -> None:
    project = tmp_path / "demo"
    config = str(lean_project(project))
    mlflow_server.start()
    env = clean_env(MLFLOW_TRACKING_URI=mlflow_server.url, CONVEYOR_SIGNING_KEY=KEY, **QUICK)

    run = start("run", "-c", config, cwd=tmp_path, name="run", env=env)
    wait_for(lambda: step_status(project, "register") == "running", what="the register step")
    # The kill lands while the run is being logged: its MLflow run exists, no version yet
    # (the version is created after the model, the profile and the report are logged).
    wait_for(lambda: _server_rows(mlflow_server, "runs") > 0, what="the MLflow run")
    mlflow_server.kill()
    code, out, err = run.finish()
    assert code == 75, out + err
    assert "did not answer" in err
    assert step_status(project, "register") == "failed"
    left = (_server_rows(mlflow_server, "runs"), _server_rows(mlflow_server, "model_versions"))
    assert left == (1, 0), "the kill left a version behind, or no half-logged run"

    mlflow_server.start()
    registry = ModelRegistry(mlflow_server.url)
    assert _versions(registry) == []
    again = conveyor("run", "-c", config, cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    (version,) = _versions(registry)
    assert (version.version, KEY_TAG in version.tags) == ("1", True)  # a whole version
    champion = registry.get_alias(NAME, "champion")
    assert champion is not None
    assert champion.version == "1"


def _server_rows(server: MlflowServer, table: str) -> int:
    """The rows of a table of the tracking server's SQLite store (0 before it exists)."""
    store = server.folder / "mlflow.db"
    if not store.is_file():
        return 0
    # Read-write: after a SIGKILL, SQLite rolls back the writer's unfinished transaction.
    with contextlib.closing(sqlite3.connect(f"file:{store}?mode=rw", uri=True, timeout=30)) as db:
        try:
            return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # the store is not initialised yet
                return 0
            raise


def _versions(registry: ModelRegistry) -> list[ModelVersionInfo]:
    models = {m["name"] for m in registry.list_models()}
    return list(registry.list_versions(NAME)) if NAME in models else []


def test_a_server_killed_while_serving_leaves_the_current_version_serving(
    tmp_path: Path, mlflow_server: MlflowServer
) -> None:
    import httpx
    import pandas as pd
    from tests.integration.serving.conftest import metric_value, wait_ready

    project = tmp_path / "demo"
    config = str(lean_project(project))
    mlflow_server.start()
    env = clean_env(MLFLOW_TRACKING_URI=mlflow_server.url, CONVEYOR_SIGNING_KEY=KEY, **QUICK)
    trained = conveyor("run", "-c", config, cwd=tmp_path, env=env)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    rows = pd.read_csv(project / "data" / "churn.csv").head(3).drop(columns=["churned"])
    body = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = ["serve", "-c", config, "--port", str(port), "--poll-interval", "0.5"]
    server = start(*argv, cwd=tmp_path, name="serve", env=env)
    try:
        wait_ready(server.process, url, server.err)
        before = httpx.post(f"{url}/invocations", json=body, timeout=30)
        mlflow_server.kill()
        wait_for(
            lambda: metric_value(url, "conveyor_model_alias_checks_total", result="error") >= 2,
            what="two failed alias checks",
            timeout=120,
        )
        after = httpx.post(f"{url}/invocations", json=body, timeout=30)
        ready = httpx.get(f"{url}/readyz", timeout=30)
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)
    assert (after.status_code, ready.status_code) == (200, 200), after.text
    assert after.json() == before.json()
    assert after.headers["x-model-version"] == "1"
