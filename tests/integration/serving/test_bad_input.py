"""Bad requests get a 4xx naming the field or column, never a 5xx; the server stays ready."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from tests.integration.serving.conftest import MODEL, Served

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}
GOOD_ROW = {"age": 40.0, "hours": 38.0, "job": "nurse"}


def split(*rows: list[Any], columns: tuple[str, ...] = ("age", "hours", "job")) -> bytes:
    return json.dumps({"dataframe_split": {"columns": list(columns), "data": list(rows)}}).encode()


def tensor(name: str, datatype: str, data: list[Any]) -> dict[str, Any]:
    return {"name": name, "shape": [len(data)], "datatype": datatype, "data": data}


def v2(*tensors: dict[str, Any]) -> bytes:
    return json.dumps({"inputs": list(tensors)}).encode()


V2_GOOD = [tensor("age", "FP64", [40.0]), tensor("hours", "FP64", [38.0])]
INFER = f"/v2/models/{MODEL}/infer"

# (id, path, headers, body, status, text the message must contain)
CASES: list[tuple[str, str, dict[str, str], bytes, int, str]] = [
    ("malformed-json", "/invocations", JSON, b'{"dataframe_split": ', 400, "malformed JSON"),
    ("not-an-object", "/invocations", JSON, b"[1, 2]", 400, "must be an object"),
    ("no-form", "/invocations", JSON, b'{"rows": []}', 400, "'rows'"),
    ("two-forms", "/invocations", JSON, b'{"inputs": [], "instances": []}', 400, "exactly one"),
    ("wrong-content-type", "/invocations", {"Content-Type": "text/plain"}, b"x", 415, "text/plain"),
    ("no-content-type", "/invocations", {}, split([1.0, 2.0, "nurse"]), 415, "Content-Type"),
    ("latin-1-charset", "/invocations", {"Content-Type": "text/csv; charset=latin-1"}, b"a", 415,
     "latin-1"),
    ("not-utf8", "/invocations", JSON, b'{"inputs": [{"job": "\xff"}]}', 400, "UTF-8"),
    ("missing-column", "/invocations", JSON, split([1.0, 2.0], columns=("age", "hours")), 422,
     "'job'"),
    ("extra-column", "/invocations", JSON,
     json.dumps({"dataframe_records": [{**GOOD_ROW, "zip": "90210"}]}).encode(), 422, "'zip'"),
    ("duplicate-column", "/invocations", JSON,
     split([1.0, 1.0, 2.0, "x"], columns=("age", "age", "hours", "job")), 422, "'age'"),
    ("string-in-number", "/invocations", JSON, split(["forty", 38.0, "nurse"]), 422,
     "column 'age' row 0: expected a number"),
    ("bool-in-number", "/invocations", JSON, split([40.0, True, "nurse"]), 422, "'hours'"),
    ("number-in-string", "/invocations", JSON, split([40.0, 38.0, 7]), 422,
     "column 'job' row 0: expected a string"),
    ("null-in-string", "/invocations", JSON, split([40.0, 38.0, "nurse"], [40.0, 38.0, None]), 422,
     "column 'job' row 1: missing value not allowed"),
    ("infinity", "/invocations", JSON, b'{"inputs": {"age": [1e999], "hours": [1], "job": ["a"]}}',
     422, "'age'"),
    ("ragged-row", "/invocations", JSON, split([40.0, 38.0]), 422, "row 0 has 2 values"),
    ("ragged-columns", "/invocations", JSON,
     b'{"inputs": {"age": [1, 2], "hours": [1], "job": ["a", "b"]}}', 422, "'hours' has 1"),
    ("empty-batch", "/invocations", JSON, b'{"dataframe_records": []}', 422, "empty batch"),
    ("empty-body", "/invocations", JSON, b"", 400, "empty body"),
    ("too-many-rows", "/invocations", JSON, split(*[[40.0, 38.0, "nurse"]] * 501), 422,
     "501 rows exceeds the limit of 500"),
    ("body-too-large", "/invocations", JSON, b" " * 200_001, 413, "200000 bytes"),
    ("csv-bad-number", "/invocations", {"Content-Type": "text/csv"},
     b"age,hours,job\n40,lots,nurse\n", 422, "column 'hours' row 0"),
    ("csv-missing-column", "/invocations", {"Content-Type": "text/csv"}, b"age,job\n1,a\n", 422,
     "'hours'"),
    ("csv-header-only", "/invocations", {"Content-Type": "text/csv"}, b"age,hours,job\n", 422,
     "empty batch"),
    ("probabilities-not-bool", "/invocations?probabilities=maybe", JSON, split([1.0, 2.0, "a"]),
     422, "probabilities"),
    ("v2-unknown-model", "/v2/models/nope/infer", JSON, v2(*V2_GOOD), 404, "'nope'"),
    ("v2-unknown-version", f"/v2/models/{MODEL}/versions/9/infer", JSON, v2(*V2_GOOD), 404,
     "'9'"),
    ("v2-missing-column", INFER, JSON, v2(*V2_GOOD), 422, "'job'"),
    ("v2-wrong-datatype", INFER, JSON, v2(*V2_GOOD, tensor("job", "FP64", [1.0])), 422,
     "input 'job'"),
    ("v2-bytes-for-number", INFER, JSON,
     v2(tensor("age", "BYTES", ["x"]), V2_GOOD[1], tensor("job", "BYTES", ["a"])), 422,
     "input 'age'"),
    ("v2-shape-mismatch", INFER, JSON,
     v2({**V2_GOOD[0], "shape": [2]}, V2_GOOD[1], tensor("job", "BYTES", ["a"])), 422,
     "input 'age': shape [2]"),
    ("v2-no-inputs", INFER, JSON, b'{"inputs": []}', 400, "'inputs'"),
    ("v2-unknown-datatype", INFER, JSON, v2(tensor("age", "FLOAT", [1.0])), 400, "'FLOAT'"),
    ("v2-unknown-output", INFER, JSON,
     json.dumps({"inputs": [*V2_GOOD, tensor("job", "BYTES", ["a"])],
                 "outputs": [{"name": "logits"}]}).encode(), 422, "'logits'"),
    ("v2-malformed", INFER, JSON, b"{", 400, "malformed JSON"),
    ("v2-not-utf8", INFER, JSON, b"\xfe\xff", 400, "UTF-8"),
]  # fmt: skip


def message(served_body: dict[str, Any], path: str) -> str:
    if path.startswith("/v2"):
        assert set(served_body) == {"error"}
        return str(served_body["error"])
    assert set(served_body) == {"error_code", "message"}
    return str(served_body["message"])


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "text"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_request_is_a_4xx_naming_the_problem(
    served: Served, path: str, headers: dict[str, str], body: bytes, status: int, text: str
) -> None:
    response = served.client.post(path, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert text in message(response.json(), path)


def test_unknown_model_metadata_is_404_in_protocol_shape(served: Served) -> None:
    for path in ("/v2/models/nope", "/v2/models/nope/ready", f"/v2/models/{MODEL}/versions/9"):
        response = served.client.get(path)
        assert response.status_code == 404
        assert "error" in response.json()


def test_unknown_paths_and_methods_are_4xx(served: Served) -> None:
    unknown = served.client.get("/no/such/path")
    assert unknown.status_code == 404
    wrong_method = served.client.get("/invocations")
    assert wrong_method.status_code == 405


def test_server_stays_ready_and_correct_after_the_battery(served: Served) -> None:
    for _, path, headers, body, _, _ in CASES:
        served.client.post(path, content=body, headers=headers)
    assert served.client.get("/readyz").status_code == 200
    answer = served.client.post("/invocations", json={"dataframe_records": [GOOD_ROW]})
    assert answer.status_code == 200
    expected = served.offline.predict(pd.DataFrame([GOOD_ROW]).astype({"job": "str"}))
    assert answer.json()["predictions"] == expected.tolist()
