"""Both protocols, every input form, parity with offline predict, headers, metrics, docs."""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.serving.conftest import FEATURES, MODEL, Served

pytestmark = pytest.mark.integration


def offline_predictions(served: Served) -> list[Any]:
    return list(np.asarray(served.offline.predict(served.rows)).tolist())


def records(served: Served) -> list[dict[str, Any]]:
    return list(served.rows.to_dict(orient="records"))


def payloads(served: Served) -> dict[str, dict[str, Any]]:
    rows = served.rows
    columns = {c: rows[c].tolist() for c in FEATURES}
    return {
        "dataframe_split": {"dataframe_split": {"columns": FEATURES, "data": rows.values.tolist()}},
        "dataframe_split_reordered": {
            "dataframe_split": {
                "columns": FEATURES[::-1],
                "data": rows[FEATURES[::-1]].values.tolist(),
            }
        },
        "dataframe_records": {"dataframe_records": records(served)},
        "instances_records": {"instances": records(served)},
        "instances_rows": {"instances": rows.values.tolist()},
        "inputs_columns": {"inputs": columns},
        "inputs_records": {"inputs": records(served), "params": {}},
    }


FORMS = [
    "dataframe_split",
    "dataframe_split_reordered",
    "dataframe_records",
    "instances_records",
    "instances_rows",
    "inputs_columns",
    "inputs_records",
]


@pytest.mark.parametrize("form", FORMS)
def test_invocations_json_forms_match_offline_predict(served: Served, form: str) -> None:
    response = served.client.post("/invocations", json=payloads(served)[form])
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": offline_predictions(served)}
    assert response.headers["x-model-name"] == MODEL
    assert response.headers["x-model-version"] == served.version


def test_invocations_csv_matches_offline_predict(served: Served) -> None:
    buffer = io.StringIO()
    served.rows.to_csv(buffer, index=False)
    response = served.client.post(
        "/invocations", content=buffer.getvalue(), headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == offline_predictions(served)


def test_probabilities_match_offline_predict_proba(served: Served) -> None:
    body = {"dataframe_records": records(served)}
    answer = served.client.post("/invocations?probabilities=true", json=body).json()
    expected = served.offline.predict_proba(served.rows)
    assert answer["classes"] == served.offline.classes_.tolist()
    assert np.allclose(np.asarray(answer["probabilities"]), expected, rtol=0, atol=1e-12)
    assert answer["predictions"] == offline_predictions(served)


def test_missing_numeric_values_are_imputed_like_offline(served: Served) -> None:
    data = [[None, 40.0, "nurse"], [70.0, math.nan, "clerk"]]
    # Python's json (as MLflow's clients use it) writes NaN as the literal NaN.
    body = json.dumps({"dataframe_split": {"columns": FEATURES, "data": data}})
    headers = {"Content-Type": "application/json"}
    answer = served.client.post("/invocations?probabilities=true", content=body, headers=headers)
    frame = pd.DataFrame(data, columns=FEATURES).astype({"age": float, "hours": float})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == served.offline.predict(frame).tolist()
    expected = served.offline.predict_proba(frame)
    assert np.allclose(answer.json()["probabilities"], expected, rtol=0, atol=1e-12)


def test_request_id_is_echoed_or_generated(served: Served) -> None:
    body = {"inputs": records(served)[:1]}
    echoed = served.client.post("/invocations", json=body, headers={"X-Request-Id": "abc-123"})
    generated = served.client.post("/invocations", json=body)
    assert echoed.headers["x-request-id"] == "abc-123"
    assert len(generated.headers["x-request-id"]) == 32


def v2_inputs(served: Served) -> list[dict[str, Any]]:
    rows = served.rows
    return [
        {"name": "age", "shape": [len(rows)], "datatype": "FP64", "data": rows["age"].tolist()},
        {"name": "hours", "shape": [len(rows), 1], "datatype": "FP32",
         "data": [[v] for v in rows["hours"].tolist()]},
        {"name": "job", "shape": [len(rows)], "datatype": "BYTES", "data": rows["job"].tolist()},
    ]  # fmt: skip


@pytest.mark.parametrize("path", ["/v2/models/{m}/infer", "/v2/models/{m}/versions/{v}/infer"])
def test_v2_infer_matches_offline_with_probabilities(served: Served, path: str) -> None:
    url = path.format(m=MODEL, v=served.version)
    response = served.client.post(url, json={"id": "req-7", "inputs": v2_inputs(served)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model_name"], body["model_version"], body["id"]) == (
        MODEL,
        served.version,
        "req-7",
    )
    outputs = {o["name"]: o for o in body["outputs"]}
    n = len(served.rows)
    assert outputs["predictions"]["data"] == offline_predictions(served)
    assert outputs["predictions"]["datatype"] == "BYTES"
    assert outputs["probabilities"]["shape"] == [n, 2]
    proba = np.asarray(outputs["probabilities"]["data"]).reshape(n, 2)
    assert np.allclose(proba, served.offline.predict_proba(served.rows), rtol=0, atol=1e-12)
    assert response.headers["x-model-version"] == served.version


def test_v2_infer_returns_only_the_requested_output(served: Served) -> None:
    request = {"inputs": v2_inputs(served), "outputs": [{"name": "predictions"}]}
    response = served.client.post(f"/v2/models/{MODEL}/infer", json=request)
    body = response.json()
    assert [o["name"] for o in body["outputs"]] == ["predictions"]
    assert body["id"] == response.headers["x-request-id"]


def test_v2_metadata_health_and_readiness(served: Served) -> None:
    client = served.client
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["name"] == "conveyor"
    meta = client.get(f"/v2/models/{MODEL}").json()
    assert meta["name"] == MODEL
    assert meta["versions"] == [served.version]
    assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
        ("age", "FP64"),
        ("hours", "FP64"),
        ("job", "BYTES"),
    ]
    assert meta["parameters"]["classes"] == ["<=50K", ">50K"]
    assert meta["parameters"]["routing"]["mode"] == "single"
    one_version = {k: v for k, v in meta["parameters"].items() if k != "routing"}
    version_meta = client.get(f"/v2/models/{MODEL}/versions/{served.version}").json()
    assert version_meta == {**meta, "parameters": one_version}
    assert client.get(f"/v2/models/{MODEL}/ready").json() == {"name": MODEL, "ready": True}


def test_health_ready_and_docs(served: Served) -> None:
    assert served.client.get("/healthz").json() == {"status": "alive"}
    ready = served.client.get("/readyz").json()
    assert ready == {"status": "ready", "model": MODEL, "version": served.version}
    assert served.client.get("/docs").status_code == 200
    paths = served.client.get("/openapi.json").json()["paths"]
    assert "/invocations" in paths
    assert "/v2/models/{name}/infer" in paths


def metric_samples(served: Served) -> dict[str, list[Any]]:
    response = served.client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    families = text_string_to_metric_families(response.text)
    return {f.name: f.samples for f in families}


def requests_counted(served: Served, route: str, status: str) -> float:
    samples = metric_samples(served)["conveyor_requests"]
    return sum(
        s.value
        for s in samples
        if s.name == "conveyor_requests_total"
        and s.labels["route"] == route
        and s.labels["status"] == status
        and s.labels["version"] == served.version
    )


def test_metrics_count_requests_and_name_the_model(served: Served) -> None:
    before = requests_counted(served, "/invocations", "200")
    for _ in range(3):
        served.client.post("/invocations", json={"inputs": records(served)[:2]})
    assert requests_counted(served, "/invocations", "200") == before + 3
    samples = metric_samples(served)
    (info,) = samples["conveyor_model_info"]
    assert info.labels == {
        "name": MODEL,
        "version": served.version,
        "run_id": served.run_id,
        "runtime": "pyfunc",
    }
    assert info.value == 1.0
    buckets = [s for s in samples["conveyor_request_duration_seconds"] if s.name.endswith("_count")]
    assert any(s.labels["route"] == "/invocations" and s.value >= 3 for s in buckets)


def test_unknown_categories_are_scored_like_offline_and_counted(served: Served) -> None:
    row = {"age": 33.0, "hours": 40.0, "job": "astronaut"}
    metric = "conveyor_unknown_category_values_total"

    def counted() -> float:
        family = metric_samples(served).get(metric.removesuffix("_total"), [])
        found = [s.value for s in family if s.name == metric]
        return sum(found)

    before = counted()
    answer = served.client.post("/invocations", json={"dataframe_records": [row, row]})
    assert answer.status_code == 200, answer.text
    frame = pd.DataFrame([row, row]).astype({"job": "str"})
    assert answer.json()["predictions"] == served.offline.predict(frame).tolist()
    assert counted() == before + 2
