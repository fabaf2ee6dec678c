"""The Open Inference Protocol v2 (KServe V2, spoken by KServe, Seldon MLServer and Triton).

A request carries one named tensor per input column (``{"name", "shape", "datatype",
"data"}``; ``shape`` is ``[rows]`` or ``[rows, 1]``, ``data`` flat or nested row-major).
The answer names the model, its version and the request id, and holds the output tensors
``predictions`` and, for classifiers, ``probabilities`` (``[rows, classes]``, classes in
the order of the metadata's ``parameters.classes``). Errors are ``{"error": "..."}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from conveyor.serving.inputs import InputColumn, RawColumns, RequestError, check_row_limit
from conveyor.serving.slot import ModelSlot, Prediction

__all__ = [
    "PREDICTIONS",
    "PROBABILITIES",
    "InferRequest",
    "check_datatype",
    "infer_response",
    "model_metadata",
    "parse_infer_request",
    "server_metadata",
]

PREDICTIONS = "predictions"
PROBABILITIES = "probabilities"
NUMBER_DATATYPES = frozenset(
    {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
    | {"FP16", "FP32", "FP64"}
)
DATATYPES = NUMBER_DATATYPES | {"BOOL", "BYTES"}


@dataclass(frozen=True)
class InferRequest:
    """A parsed inference request.

    Attributes:
        id: the request's ``id`` (echoed in the answer), if it sent one.
        columns: column name -> values.
        outputs: output names asked for; None means all.
    """

    id: str | None
    columns: RawColumns
    outputs: tuple[str, ...] | None = None


def server_metadata(version: str) -> dict[str, Any]:
    """``GET /v2``: the server's name, version and protocol extensions."""
    return {"name": "conveyor", "version": version, "extensions": []}


def _outputs(slot: ModelSlot) -> list[str]:
    return [PREDICTIONS, PROBABILITIES] if slot.is_classifier else [PREDICTIONS]


def model_metadata(slot: ModelSlot) -> dict[str, Any]:
    """``GET /v2/models/{name}``: inputs, outputs, versions and platform of the loaded model."""
    outputs = [{"name": PREDICTIONS, "datatype": _datatype_of(list(slot.classes)), "shape": [-1]}]
    if slot.is_classifier:
        shape = [-1, len(slot.classes)]
        outputs.append({"name": PROBABILITIES, "datatype": "FP64", "shape": shape})
    return {
        "name": slot.name,
        "versions": [slot.version],
        "platform": "onnxruntime_onnx" if slot.runtime == "onnx" else "sklearn",
        "inputs": [
            {"name": c.name, "datatype": c.v2_datatype, "shape": [-1]} for c in slot.schema.columns
        ],
        "outputs": outputs,
        "parameters": {
            "runtime": slot.runtime,
            "run_id": slot.run_id,
            "classes": list(slot.classes),
        },
    }


def _flatten(data: Any, *, name: str) -> list[Any]:
    if not isinstance(data, list):
        raise RequestError(f"input {name!r}: 'data' must be a list", status=400)
    if not any(isinstance(item, list) for item in data):
        return data
    flat: list[Any] = []
    for item in data:
        flat.extend(_flatten(item, name=name) if isinstance(item, list) else [item])
    return flat


def _rows(tensor: dict[str, Any], name: str, size: int) -> int:
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise RequestError(f"input {name!r}: 'shape' must be a list of non-negative integers", 400)
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
        raise RequestError(f"input {name!r}: shape {shape} must be [rows] or [rows, 1]", 400)
    if math.prod(shape) != size:
        raise RequestError(f"input {name!r}: shape {shape} does not match {size} data values")
    return int(shape[0])


def _input_tensor(tensor: Any, index: int, *, max_rows: int) -> tuple[str, str, list[Any]]:
    if not isinstance(tensor, dict):
        raise RequestError(f"inputs[{index}] must be an object", status=400)
    name = tensor.get("name")
    if not isinstance(name, str) or not name:
        raise RequestError(f"inputs[{index}]: 'name' must be a non-empty string", status=400)
    datatype = tensor.get("datatype")
    if datatype not in DATATYPES:
        raise RequestError(
            f"input {name!r}: unknown datatype {datatype!r} (use one of {sorted(DATATYPES)})", 400
        )
    if "data" not in tensor:
        raise RequestError(f"input {name!r}: 'data' is required", status=400)
    shape = tensor.get("shape")
    if isinstance(shape, list) and shape and type(shape[0]) is int:
        check_row_limit(shape[0], max_rows)
    if isinstance(tensor["data"], list):  # rows (flat) or rows of one value (nested)
        check_row_limit(len(tensor["data"]), max_rows)
    data = _flatten(tensor["data"], name=name)
    _rows(tensor, name, len(data))
    return name, str(datatype), data


def check_datatype(column: InputColumn, datatype: str, *, raw: bool = False) -> None:
    """Refuse a tensor datatype that does not fit the column.

    Args:
        column: the model's column.
        datatype: the tensor's datatype.
        raw: the model cleans raw values, so text (markers, numbers as text) fits a number
            column and numbers fit a string column; their values are checked one by one.

    Raises:
        RequestError: (422) e.g. BYTES for a number column, FP64 for a string column.
    """
    fits = datatype in NUMBER_DATATYPES if column.kind == "number" else datatype == "BYTES"
    if raw:
        fits = fits or datatype == "BYTES" or datatype in NUMBER_DATATYPES
    if not fits:
        expected = "a number datatype (FP64, INT64, ...)" if column.kind == "number" else "BYTES"
        raise RequestError(f"input {column.name!r}: datatype {datatype} given; expected {expected}")


def parse_infer_request(payload: Any, slot: ModelSlot, *, max_rows: int) -> InferRequest:
    """Parse ``POST /v2/models/{name}/infer``'s body.

    Args:
        payload: the decoded JSON.
        slot: the model answering (for datatypes and output names).
        max_rows: the batch row limit, checked on each tensor's shape and data length
            before its values are flattened.

    Returns:
        The request id, raw columns and requested outputs.

    Raises:
        RequestError: (400) a malformed request; (422) a datatype or shape that does not
            fit a column, an unknown output, or more rows than ``max_rows``.
    """
    if not isinstance(payload, dict):
        raise RequestError("the JSON body must be an object with 'inputs'", status=400)
    request_id = payload.get("id")
    if request_id is not None and not _is_text(request_id):
        raise RequestError("'id' must be a string of Unicode text", status=400)
    tensors = payload.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise RequestError("'inputs' must be a non-empty list of tensors", status=400)
    columns: RawColumns = {}
    for index, tensor in enumerate(tensors):
        name, datatype, data = _input_tensor(tensor, index, max_rows=max_rows)
        if name in columns:
            raise RequestError(f"input {name!r} is given twice")
        column = slot.schema.column(name)
        if column is not None:
            check_datatype(column, datatype, raw=slot.schema.rules is not None)
        columns[name] = data
    return InferRequest(request_id, columns, _requested_outputs(payload.get("outputs"), slot))


def _is_text(value: Any) -> bool:
    """A string the answer can carry: Unicode text, no lone surrogate (``"\\ud800"`` in
    JSON decodes to one, and no encoder writes it back)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _requested_outputs(outputs: Any, slot: ModelSlot) -> tuple[str, ...] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise RequestError("'outputs' must be a list of objects with a 'name'", status=400)
    names = tuple(str(o["name"]) for o in outputs)
    unknown = [n for n in names if n not in _outputs(slot)]
    if unknown:
        raise RequestError(f"unknown output {unknown[0]!r}; the model has {_outputs(slot)}")
    return names


def _datatype_of(values: list[Any]) -> str:
    if values and all(isinstance(v, str) for v in values):
        return "BYTES"
    if values and all(isinstance(v, bool) for v in values):
        return "BOOL"
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    return "FP64"


def infer_response(
    slot: ModelSlot, prediction: Prediction, *, request_id: str, outputs: tuple[str, ...] | None
) -> dict[str, Any]:
    """The inference answer: model name and version, request id, output tensors."""
    rows = len(prediction.predictions)
    tensors = []
    if outputs is None or PREDICTIONS in outputs:
        tensors.append(
            {
                "name": PREDICTIONS,
                "shape": [rows],
                "datatype": _datatype_of(prediction.predictions),
                "data": prediction.predictions,
            }
        )
    if prediction.probabilities is not None and (outputs is None or PROBABILITIES in outputs):
        tensors.append(
            {
                "name": PROBABILITIES,
                "shape": [rows, len(slot.classes)],
                "datatype": "FP64",
                "data": [p for row in prediction.probabilities for p in row],
            }
        )
    return {
        "model_name": slot.name,
        "model_version": slot.version,
        "id": request_id,
        "outputs": tensors,
    }
