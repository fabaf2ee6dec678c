"""HTTP routes: MLflow's ``/invocations`` and the Open Inference Protocol v2 endpoints.

Handlers stay thin: read the body within its limit, hand parsing, coercion and
prediction to a worker thread (so health checks never wait behind a batch), and answer
with the model's name and version in headers and, for v2, in the body.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from conveyor import __version__
from conveyor.serving.body import decode_text, media_type, parse_json, read_body
from conveyor.serving.inputs import RequestError
from conveyor.serving.protocols import mlflow as mlflow_protocol
from conveyor.serving.protocols import v2
from conveyor.serving.slot import ModelSlot
from conveyor.serving.state import ServingState, StateDep, answered_by, model_headers, score

__all__ = ["INVOCATIONS_BODY", "V2_INFER_BODY", "mlflow_router", "v2_router"]

mlflow_router = APIRouter(tags=["MLflow scoring protocol"])
v2_router = APIRouter(prefix="/v2", tags=["Open Inference Protocol v2"])

_ANY_JSON: dict[str, Any] = {"type": "object", "additionalProperties": True}
INVOCATIONS_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "Exactly one of the four forms, optionally with 'params'.",
                    "properties": {
                        "dataframe_split": _ANY_JSON,
                        "dataframe_records": {"type": "array", "items": _ANY_JSON},
                        "instances": {"type": ["array", "object"]},
                        "inputs": {"type": ["array", "object"]},
                        "params": _ANY_JSON,
                    },
                }
            },
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}
_TENSOR: dict[str, Any] = {
    "type": "object",
    "required": ["name", "shape", "datatype", "data"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
        "datatype": {"type": "string", "enum": sorted(v2.DATATYPES)},
        "data": {"type": "array"},
    },
}
V2_INFER_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "inputs": {"type": "array", "items": _TENSOR},
                        "outputs": {"type": "array", "items": _ANY_JSON},
                        "parameters": _ANY_JSON,
                    },
                }
            }
        },
    }
}


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


# -- MLflow scoring protocol -------------------------------------------------------------
@mlflow_router.post("/invocations", openapi_extra=INVOCATIONS_BODY)
async def invocations(
    request: Request,
    state: StateDep,
    probabilities: Annotated[
        bool, Query(description="Classifiers: add class probabilities and their classes.")
    ] = False,
) -> JSONResponse:
    """Score rows sent in any of MLflow's forms (JSON or CSV); answer ``predictions``."""
    slot = state.require_slot()  # this request finishes on this version, even across a swap
    answered_by(request, slot)
    kind = media_type(
        request.headers.get("content-type"), accepted=("application/json", "text/csv")
    )
    if probabilities and not slot.is_classifier:
        raise RequestError("probabilities=true: the model is a regressor; it has no classes")
    body = await read_body(request, limit=state.settings.max_body_bytes)
    if kind == "text/csv":

        def parse() -> Any:
            return mlflow_protocol.parse_csv(decode_text(body), slot.schema)
    else:

        def parse() -> Any:
            return mlflow_protocol.parse_payload(parse_json(body), slot.schema)

    prediction, rows = await run_in_threadpool(
        score,
        slot,
        parse,
        max_rows=state.settings.max_batch_rows,
        text=kind == "text/csv",
        probabilities=probabilities,
    )
    state.metrics.count_rows(model=(slot.name, slot.version), route="/invocations", rows=rows)
    return JSONResponse(
        mlflow_protocol.predictions_body(slot, prediction), headers=model_headers(slot)
    )


# -- Open Inference Protocol v2 -------------------------------------------------------------
def _model(state: ServingState, name: str, version: str | None = None) -> ModelSlot:
    slot = state.require_slot()
    if name != slot.name:
        raise RequestError(f"unknown model {name!r}; this server serves {slot.name!r}", 404)
    if version is not None and version != slot.version:
        raise RequestError(
            f"model {name!r} has no version {version!r} loaded (loaded: {slot.version!r})", 404
        )
    return slot


@v2_router.get("/health/live")
async def v2_live() -> dict[str, bool]:
    """Server liveness."""
    return {"live": True}


@v2_router.get("/health/ready")
async def v2_ready(state: StateDep) -> JSONResponse:
    """Server readiness: 200 when the model is loaded, warmed and not draining; else 400
    (the protocol answers "not ready" with a 4xx)."""
    ready = state.is_ready()
    return JSONResponse({"ready": ready}, status_code=200 if ready else 400)


@v2_router.get("")
async def v2_server_metadata() -> dict[str, Any]:
    """Server name, version and extensions."""
    return v2.server_metadata(__version__)


@v2_router.get("/models/{name}")
async def v2_model_metadata(name: str, state: StateDep) -> dict[str, Any]:
    """Metadata of the loaded model: inputs, outputs, versions, platform."""
    return v2.model_metadata(_model(state, name))


@v2_router.get("/models/{name}/versions/{version}")
async def v2_version_metadata(name: str, version: str, state: StateDep) -> dict[str, Any]:
    """Metadata of one version (only the loaded one exists here)."""
    return v2.model_metadata(_model(state, name, version))


@v2_router.get("/models/{name}/ready")
async def v2_model_ready(name: str, state: StateDep) -> dict[str, Any]:
    """Model readiness."""
    return {"name": _model(state, name).name, "ready": True}


@v2_router.get("/models/{name}/versions/{version}/ready")
async def v2_version_ready(name: str, version: str, state: StateDep) -> dict[str, Any]:
    """Model version readiness."""
    return {"name": _model(state, name, version).name, "ready": True}


async def _infer(request: Request, state: ServingState, slot: ModelSlot) -> JSONResponse:
    answered_by(request, slot)
    media_type(request.headers.get("content-type"), accepted=("application/json",), missing_ok=True)
    body = await read_body(request, limit=state.settings.max_body_bytes)
    parsed = await run_in_threadpool(lambda: v2.parse_infer_request(parse_json(body), slot))
    prediction, rows = await run_in_threadpool(
        score,
        slot,
        lambda: parsed.columns,
        max_rows=state.settings.max_batch_rows,
        probabilities=parsed.outputs is None or v2.PROBABILITIES in parsed.outputs,
    )
    route = getattr(request.scope.get("route"), "path", "/v2/models/{name}/infer")
    state.metrics.count_rows(model=(slot.name, slot.version), route=route, rows=rows)
    answer = v2.infer_response(
        slot, prediction, request_id=parsed.id or _request_id(request), outputs=parsed.outputs
    )
    return JSONResponse(answer, headers=model_headers(slot))


@v2_router.post("/models/{name}/infer", openapi_extra=V2_INFER_BODY)
async def v2_infer(name: str, request: Request, state: StateDep) -> JSONResponse:
    """Score one named tensor per input column; answer ``predictions`` (and probabilities)."""
    return await _infer(request, state, _model(state, name))


@v2_router.post("/models/{name}/versions/{version}/infer", openapi_extra=V2_INFER_BODY)
async def v2_version_infer(
    name: str, version: str, request: Request, state: StateDep
) -> JSONResponse:
    """Score on one version (only the loaded one exists here)."""
    return await _infer(request, state, _model(state, name, version))
