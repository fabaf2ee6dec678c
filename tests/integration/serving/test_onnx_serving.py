"""The ONNX Runtime fast path on a real server: chosen when a parity-verified ONNX model
exists, same answers as the pipeline, visible in metadata and metrics, forceable."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from tests.integration.serving.conftest import (
    CONVEYOR,
    FEATURES,
    MODEL,
    clean_env,
    launch,
    make_table,
    metric_value,
    register_conveyor_model,
)

from conveyor.registry.store import ModelRegistry

pytestmark = pytest.mark.integration

FAST_MODEL = "onnx-serve-test"


@pytest.fixture(scope="module")
def fast_model(
    store: tuple[ModelRegistry, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, str]:
    """Conveyor's own pipeline (LightGBM), registered with a verified ONNX export."""
    registry, _ = store
    table = make_table(n=400, seed=51)
    table.loc[table.index % 9 == 0, "job"] = np.nan
    return register_conveyor_model(
        registry, table, name=FAST_MODEL, key="onnx-1", onnx=True, n_estimators=25
    )


@pytest.fixture(scope="module")
def fast_server(
    store: tuple[ModelRegistry, str],
    fast_model: tuple[Any, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    registry, _ = store
    folder = tmp_path_factory.mktemp("onnx-server")
    options = ("--poll-interval", "0", "--drain-seconds", "0")
    uri = f"models:/{FAST_MODEL}@champion"
    with launch(registry.tracking_uri, uri, folder, *options) as (_, url, _):
        yield url


def rows() -> pd.DataFrame:
    frame = make_table(n=60, seed=77)[FEATURES]
    frame.loc[0, "age"] = np.nan  # imputed
    frame.loc[1, "job"] = np.nan  # the missing level
    frame.loc[2, "job"] = "astronaut"  # never seen: the infrequent level
    return frame


def as_json_rows(frame: pd.DataFrame) -> list[list[Any]]:
    return [[None if pd.isna(v) else v for v in row] for row in frame.itertuples(index=False)]


def test_auto_serves_the_verified_onnx_model_with_the_pipelines_answers(
    fast_server: str, fast_model: tuple[Any, str]
) -> None:
    pipeline, version = fast_model
    frame = rows()
    payload = {"dataframe_split": {"columns": FEATURES, "data": as_json_rows(frame)}}
    answer = httpx.post(f"{fast_server}/invocations?probabilities=true", json=payload, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-model-version"] == version
    body = answer.json()
    offline = frame.astype({"job": "str"})
    assert body["predictions"] == pipeline.predict(offline).tolist()
    expected = pipeline.predict_proba(offline)
    assert np.abs(np.asarray(body["probabilities"]) - expected).max() <= 1e-4
    meta = httpx.get(f"{fast_server}/v2/models/{FAST_MODEL}", timeout=10).json()
    assert meta["parameters"]["runtime"] == "onnx"
    assert meta["platform"] == "onnxruntime_onnx"
    assert metric_value(fast_server, "conveyor_model_info", version=version, runtime="onnx") == 1


def test_v2_infer_on_the_onnx_path(fast_server: str, fast_model: tuple[Any, str]) -> None:
    pipeline, _ = fast_model
    frame = rows().head(5)
    tensors = [
        {
            "name": c,
            "shape": [5],
            "datatype": "BYTES" if c == "job" else "FP64",
            "data": [None if pd.isna(v) else v for v in frame[c]],
        }
        for c in FEATURES
    ]
    answer = httpx.post(
        f"{fast_server}/v2/models/{FAST_MODEL}/infer", json={"inputs": tensors}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    (predictions,) = [o for o in answer.json()["outputs"] if o["name"] == "predictions"]
    assert predictions["data"] == pipeline.predict(frame.astype({"job": "str"})).tolist()


def test_pyfunc_can_be_forced(
    store: tuple[ModelRegistry, str], fast_model: tuple[Any, str], tmp_path: Path
) -> None:
    registry, _ = store
    options = ("--runtime", "pyfunc", "--poll-interval", "0", "--drain-seconds", "0")
    uri = f"models:/{FAST_MODEL}@champion"
    with launch(registry.tracking_uri, uri, tmp_path, *options) as (_, url, _):
        meta = httpx.get(f"{url}/v2/models/{FAST_MODEL}", timeout=10).json()
        assert meta["parameters"]["runtime"] == "pyfunc"


def test_forcing_onnx_on_a_model_without_it_fails_with_one_line(
    store: tuple[ModelRegistry, str], tmp_path: Path
) -> None:
    registry, _ = store
    argv = [CONVEYOR, "serve", "--port", "1", "--runtime", "onnx"]
    argv += ["--model-uri", f"models:/{MODEL}@champion", "--tracking-uri", registry.tracking_uri]
    result = subprocess.run(
        argv,
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "has no parity-verified ONNX model" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unknown_runtime_is_a_usage_error(tmp_path: Path) -> None:
    argv = [CONVEYOR, "serve", "--runtime", "tensorrt", "--model-uri", "models:/m@champion"]
    result = subprocess.run(
        argv, cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "--runtime" in result.stderr and "'auto', 'onnx' or 'pyfunc'" in result.stderr
