"""The registered model works with MLflow's own tools on raw rows, with or without Conveyor.

A messy table is trained by the real ``conveyor run``; then a real ``mlflow models serve``
and a real ``conveyor serve`` answer the same raw JSON rows (integers, ``?`` markers,
padded text, nulls, a dropped ID column), and a Python without Conveyor on its path loads
the model through ``mlflow.pyfunc`` and scores the raw CSV.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.parity.test_raw_row_parity import Trained, train
from tests.integration.serving.conftest import clean_env, free_port, launch
from tests.messy_tables import FEATURES, messy_table

pytestmark = pytest.mark.integration

READY_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    folder = tmp_path_factory.mktemp("native")
    return train(folder, messy_table(900, seed=21), name="native")


def split_payload(trained: Trained) -> dict[str, Any]:
    """Raw rows as a client sends them: MLflow's ``dataframe_split``, JSON types."""
    rows = trained.rows[[*FEATURES, "row id"]].head(60)
    records = json.loads(rows.to_json(orient="split", index=False))
    return {"dataframe_split": {"columns": records["columns"], "data": records["data"]}}


@pytest.fixture(scope="module")
def mlflow_server(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    folder = tmp_path_factory.mktemp("mlflow-serve")
    argv = [sys.executable, "-m", "mlflow", "models", "serve", "-m"]
    argv += [f"models:/{trained.name}@champion", "--env-manager", "local"]
    argv += ["-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    env = {**clean_env(), "MLFLOW_TRACKING_URI": trained.tracking_uri}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"  # its uvicorn
    log = folder / "mlflow-serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, cwd=folder, env=env, stdout=sink, stderr=sink)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(process, f"{url}/ping", log)
        yield url
    finally:
        process.terminate()
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def _wait(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mlflow models serve exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail(f"mlflow models serve was not ready within {READY_TIMEOUT_S} s")


def test_mlflow_models_serve_answers_raw_rows_as_conveyor_serve_does(
    trained: Trained, mlflow_server: str, tmp_path: Path
) -> None:
    payload = split_payload(trained)
    theirs = httpx.post(f"{mlflow_server}/invocations", json=payload, timeout=60)
    assert theirs.status_code == 200, theirs.text[:500]
    with launch(trained.tracking_uri, f"models:/{trained.name}@champion", tmp_path) as served:
        ours = httpx.post(f"{served[1]}/invocations", json=payload, timeout=60)
    assert ours.status_code == 200, ours.text[:500]
    assert theirs.json()["predictions"] == ours.json()["predictions"]


STANDALONE = """
import json, sys
sys.path = [p for p in sys.path if p]
sys.path.append(SITE)
for name in ("conveyor", "conveyor_cleaning"):
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"{name} is importable: the test would prove nothing")
import mlflow, pandas as pd
mlflow.set_tracking_uri(URI)
model = mlflow.pyfunc.load_model(MODEL)
rows = pd.read_csv(CSV)
print(json.dumps([str(v) for v in model.predict(rows)]))
"""


def test_the_model_loads_and_scores_raw_rows_where_conveyor_is_not_installed(
    trained: Trained, tmp_path: Path
) -> None:
    csv = tmp_path / "rows.csv"
    trained.rows[FEATURES].to_csv(csv, index=False)
    site = sysconfig.get_paths()["purelib"]  # .pth files (Conveyor's editable path) unread
    code = STANDALONE
    for key, value in {
        "SITE": site,
        "URI": trained.tracking_uri,
        "MODEL": f"models:/{trained.name}@champion",
        "CSV": str(csv),
    }.items():
        code = code.replace(key, repr(value))
    done = subprocess.run(
        [sys.executable, "-S", "-c", code],
        env={**clean_env(), "MLFLOW_DISABLE_TELEMETRY": "true"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    info = trained.registry.get_alias(trained.name, "champion")
    assert info is not None
    expected = [str(v) for v in trained.registry.load_pipeline(info.uri).predict(trained.rows)]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected
