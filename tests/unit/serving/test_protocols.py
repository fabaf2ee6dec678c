"""MLflow payload forms and Open Inference Protocol v2 requests and answers."""

from __future__ import annotations

import pytest

from conveyor.serving.inputs import InputColumn, InputSchema, RequestError
from conveyor.serving.protocols import mlflow, v2
from conveyor.serving.slot import ModelSlot, Prediction

SCHEMA = InputSchema(
    (InputColumn("age", "number", nullable=True), InputColumn("job", "string", nullable=True))
)
SLOT = ModelSlot(
    pipeline=None, name="m", version="3", run_id="r1", schema=SCHEMA, classes=("no", "yes")
)
EXPECTED = {"age": [1, 2], "job": ["a", "b"]}
ROWS = 100


@pytest.mark.parametrize(
    "payload",
    [
        {"dataframe_split": {"columns": ["age", "job"], "data": [[1, "a"], [2, "b"]]}},
        {"dataframe_split": {"data": [[1, "a"], [2, "b"]], "index": [0, 1]}},
        {"dataframe_records": [{"age": 1, "job": "a"}, {"age": 2, "job": "b"}]},
        {"instances": [{"age": 1, "job": "a"}, {"age": 2, "job": "b"}]},
        {"instances": [[1, "a"], [2, "b"]]},
        {"inputs": {"age": [1, 2], "job": ["a", "b"]}, "params": {"x": 1}},
    ],
)
def test_every_mlflow_form_gives_the_same_columns(payload: dict[str, object]) -> None:
    assert mlflow.parse_payload(payload, SCHEMA, max_rows=ROWS) == EXPECTED


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ([1], 400, "must be an object"),
        ({}, 400, "found none"),
        ({"inputs": [], "instances": []}, 400, "found 'instances', 'inputs'"),
        ({"data": []}, 400, "unknown field 'data'"),
        ({"dataframe_split": [[1, "a"]]}, 400, "'columns' and 'data'"),
        ({"dataframe_split": {"columns": "age", "data": []}}, 400, "list of column names"),
        ({"dataframe_split": {"columns": ["age", "age"], "data": []}}, 422, "'age' is given twice"),
        ({"inputs": {"age": 1, "job": "a"}}, 400, "column 'age' must be a list"),
        ({"inputs": "rows"}, 400, "list of rows"),
    ],
)
def test_malformed_mlflow_payloads_name_the_field(
    payload: object, status: int, message: str
) -> None:
    with pytest.raises(RequestError, match=message) as err:
        mlflow.parse_payload(payload, SCHEMA, max_rows=ROWS)
    assert err.value.status == status


def test_csv_header_names_the_columns_in_any_order() -> None:
    assert mlflow.parse_csv('job,age\r\na,1\n"b,c",\n', SCHEMA, max_rows=ROWS) == {
        "job": ["a", "b,c"],
        "age": ["1", ""],
    }
    with pytest.raises(RequestError, match="missing column"):
        mlflow.parse_csv("age\n1\n", SCHEMA, max_rows=ROWS)


def test_predictions_body_adds_probabilities_and_classes_when_computed() -> None:
    plain = mlflow.predictions_body(SLOT, Prediction(["yes"]))
    assert plain == {"predictions": ["yes"]}
    full = mlflow.predictions_body(SLOT, Prediction(["yes"], [[0.2, 0.8]]))
    assert full == {"predictions": ["yes"], "probabilities": [[0.2, 0.8]], "classes": ["no", "yes"]}
    assert mlflow.error_body(422, "bad") == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "bad",
    }
    assert mlflow.error_body(405, "x")["error_code"] == "BAD_REQUEST"


def tensor(
    name: str, datatype: str, data: list[object], shape: list[int] | None = None
) -> dict[str, object]:
    return {"name": name, "datatype": datatype, "shape": shape or [len(data)], "data": data}


def test_v2_request_becomes_columns_with_id_and_outputs() -> None:
    request = v2.parse_infer_request(
        {
            "id": "q1",
            "inputs": [
                tensor("age", "INT32", [[1], [2]], shape=[2, 1]),
                tensor("job", "BYTES", ["a", "b"]),
            ],
            "outputs": [{"name": "probabilities"}],
        },
        SLOT,
        max_rows=ROWS,
    )
    assert request == v2.InferRequest("q1", EXPECTED, ("probabilities",))


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"inputs": [tensor("age", "BYTES", ["1"])]}, 422, "input 'age': datatype BYTES given"),
        ({"inputs": [tensor("job", "FP64", [1.0])]}, 422, "input 'job': datatype FP64 given"),
        ({"inputs": [tensor("age", "FP64", [1.0], shape=[2])]}, 422, "shape \\[2\\] does not"),
        ({"inputs": [tensor("age", "FP64", [1.0, 2.0], shape=[1, 2])]}, 400, "\\[rows, 1\\]"),
        ({"inputs": [tensor("age", "FP64", [1.0]), tensor("age", "FP64", [1.0])]}, 422, "twice"),
        (
            {"inputs": [{"name": "age", "datatype": "FP64", "shape": [1]}]},
            400,
            "'data' is required",
        ),
        ({"inputs": [{"datatype": "FP64", "shape": [1], "data": [1]}]}, 400, "inputs\\[0\\]"),
        ({"inputs": "x"}, 400, "non-empty list"),
        ({"id": 5, "inputs": []}, 400, "'id' must be a string"),
        ({"inputs": [tensor("age", "FP64", [1])], "outputs": [{"name": "x"}]}, 422, "output 'x'"),
    ],
)
def test_bad_v2_requests_name_the_input(payload: object, status: int, message: str) -> None:
    with pytest.raises(RequestError, match=message) as err:
        v2.parse_infer_request(payload, SLOT, max_rows=ROWS)
    assert err.value.status == status


def test_v2_answer_carries_model_version_id_and_tensors() -> None:
    answer = v2.infer_response(
        SLOT, Prediction(["no", "yes"], [[0.9, 0.1], [0.3, 0.7]]), request_id="q1", outputs=None
    )
    assert answer["model_name"] == "m"
    assert answer["model_version"] == "3"
    assert answer["id"] == "q1"
    predictions, probabilities = answer["outputs"]
    assert predictions == {
        "name": "predictions",
        "shape": [2],
        "datatype": "BYTES",
        "data": ["no", "yes"],
    }
    assert probabilities["shape"] == [2, 2]
    assert probabilities["data"] == [0.9, 0.1, 0.3, 0.7]


def test_v2_regression_answer_is_fp64_and_metadata_lists_inputs() -> None:
    regressor = ModelSlot(pipeline=None, name="r", version="1", run_id="", schema=SCHEMA)
    answer = v2.infer_response(regressor, Prediction([1.5, 2]), request_id="x", outputs=None)
    assert [o["datatype"] for o in answer["outputs"]] == ["FP64"]
    meta = v2.model_metadata(regressor)
    assert meta["inputs"] == [
        {"name": "age", "datatype": "FP64", "shape": [-1]},
        {"name": "job", "datatype": "BYTES", "shape": [-1]},
    ]
    assert [o["name"] for o in meta["outputs"]] == ["predictions"]
    assert [o["name"] for o in v2.model_metadata(SLOT)["outputs"]] == [
        "predictions",
        "probabilities",
    ]


@pytest.mark.parametrize(
    "payload",
    [
        {"dataframe_split": {"columns": ["age", "job"], "data": [[1, "a"], [2, "b"], [3]]}},
        {"dataframe_records": [{"age": 1, "job": "a"}, {"age": 2}, {"job": "c"}]},
        {"instances": [[1, "a"], [2, "b"], "not a row"]},
        {"inputs": {"age": [1, 2, 3], "job": "not a list"}},
    ],
    ids=["split", "records", "instances", "columns"],
)
def test_mlflow_rows_over_the_limit_are_refused_before_any_row_is_read(
    payload: dict[str, object],
) -> None:
    # the third row (or column) is malformed: the limit must be what answers
    with pytest.raises(RequestError, match="batch of 3 rows exceeds the limit of 2 rows") as err:
        mlflow.parse_payload(payload, SCHEMA, max_rows=2)
    assert err.value.status == 422


def test_csv_reading_stops_at_the_first_row_over_the_limit() -> None:
    too_long = "x" * 200_000  # over the csv module's field limit: unreadable, if it were read
    text = f"age,job\n1,a\n2,b\n3,c\n4,{too_long}\n"
    with pytest.raises(RequestError, match="batch of more than 2 rows exceeds the limit of 2"):
        mlflow.parse_csv(text, SCHEMA, max_rows=2)
    with pytest.raises(RequestError, match="malformed CSV"):
        mlflow.parse_csv(text, SCHEMA, max_rows=5)
    assert mlflow.parse_csv("age,job\n1,a\n2,b\n", SCHEMA, max_rows=2) == {
        "age": ["1", "2"],
        "job": ["a", "b"],
    }


@pytest.mark.parametrize(
    "data",
    [[1.0, 2.0, 3.0], [[1.0], [2.0], [3.0]], [[[[1.0]]], 2.0, 3.0]],
    ids=["flat", "nested", "ragged-nesting"],
)
def test_v2_rows_over_the_limit_are_refused_before_flattening(data: list[object]) -> None:
    payload = {"inputs": [tensor("age", "FP64", data, shape=[3])]}
    with pytest.raises(RequestError, match="batch of 3 rows exceeds the limit of 2 rows"):
        v2.parse_infer_request(payload, SLOT, max_rows=2)


def test_a_v2_shape_over_the_limit_is_refused() -> None:
    payload = {"inputs": [tensor("age", "FP64", [1.0], shape=[10**12])]}
    with pytest.raises(RequestError, match=r"batch of 1000000000000 rows exceeds the limit of 2"):
        v2.parse_infer_request(payload, SLOT, max_rows=2)


def test_a_v2_id_that_is_no_unicode_text_is_400() -> None:
    payload = {"id": "\ud800", "inputs": [tensor("age", "FP64", [1.0])]}
    with pytest.raises(RequestError, match="'id' must be a string of Unicode text") as err:
        v2.parse_infer_request(payload, SLOT, max_rows=ROWS)
    assert err.value.status == 400
