"""A password in the source URI is in no file or log that a run, a drift report and served
traffic produce: run records, the MLflow store, artifacts, GX and model reports, DVC
records, drift JSON and HTML, and every line the CLI and the server print."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from tests.integration.data_sources.conftest import PostgresServer
from tests.integration.serving.conftest import free_port, wait_ready

pytestmark = pytest.mark.integration

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))
ROLE = "scanner"
SECRET = "p@ss:w/rd?S3cr#t!"  # every character a URI parser trips on
FORMS = (SECRET, quote(SECRET, safe=""), quote(SECRET))


@dataclass(frozen=True)
class Project:
    root: Path
    config: Path
    source: str
    outputs: list[str]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CONVEYOR_"))}
    return {**env, "COLUMNS": "200"}


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [CONVEYOR, *args]
    done = subprocess.run(
        argv, cwd=root, env=_env(), capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def _grant_role(postgres: PostgresServer) -> None:
    import psycopg

    dsn = (
        f"host=127.0.0.1 port={postgres.port} user={postgres.user}"
        f" password={postgres.password} dbname={postgres.database}"
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {ROLE}")
        conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{SECRET}'")
        conn.execute(f"GRANT SELECT ON customers TO {ROLE}")


@pytest.fixture(scope="module")
def project(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    """A project trained, drift-checked and served from a source with a password."""
    _grant_role(postgres)
    root = tmp_path_factory.mktemp("secret-project")
    source = f"postgresql://{ROLE}:{quote(SECRET, safe='')}@127.0.0.1:{postgres.port}/shop"
    config = root / "conveyor.yaml"
    config.write_text(
        f"name: secret-scan\ndata:\n  source: '{source}'\n  table: customers\n"
        "  target: churned\ntraining:\n  models:\n    - type: random_forest\n"
        "      params: {n_estimators: 20}\n",
        encoding="utf-8",
    )
    outputs = [_cli(root, "run", "-c", str(config))]
    outputs.append(
        _cli(
            root,
            "monitor",
            "drift",
            "--model",
            "secret-scan@champion",
            "--data",
            source,
            "--out",
            str(root / "drift"),
            "-c",
            str(config),
        )
    )
    texts = [o.stdout + o.stderr for o in outputs]
    texts.append(_serve_some_traffic(root, config))
    yield Project(root, config, source, texts)


def _serve_some_traffic(root: Path, config: Path) -> str:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = root / "serve.log"
    argv = [CONVEYOR, "serve", "-c", str(config), "--port", str(port), "--poll-interval", "0"]
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, cwd=root, env=_env(), stdout=sink, stderr=sink)
    try:
        wait_ready(process, url, log)
        row = {"age": 40, "plan": "basic", "monthly_charges": 70.5, "region": "north"}
        for body in ({"dataframe_records": [row]}, {"nope": 1}, {"dataframe_records": [{}]}):
            httpx.post(f"{url}/invocations", json=body, timeout=30)
        httpx.get(f"{url}/metrics", timeout=30)
    finally:
        process.terminate()
        process.communicate(timeout=30)
    return log.read_text(encoding="utf-8", errors="replace")


def _leaks(data: bytes) -> list[str]:
    return [form for form in FORMS if form.encode("utf-8") in data]


def test_the_run_drift_check_and_server_really_used_the_source(project: Project) -> None:
    assert (project.root / "drift" / "drift.json").is_file()
    assert any((project.root / ".conveyor" / "runs").iterdir())
    assert "serving secret-scan v1 " in project.outputs[-1]


def test_no_file_the_project_holds_contains_the_password(project: Project) -> None:
    leaked = {
        str(path.relative_to(project.root)): found
        for path in project.root.rglob("*")
        if path.is_file() and path != project.config and (found := _leaks(path.read_bytes()))
    }
    assert leaked == {}


def test_no_output_or_log_line_contains_the_password(project: Project) -> None:
    leaked = [_leaks(text.encode("utf-8")) for text in project.outputs]
    assert leaked == [[]] * len(project.outputs)
