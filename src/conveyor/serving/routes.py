"""HTTP routes: MLflow's ``/invocations`` and the Open Inference Protocol v2 endpoints.

Handlers stay thin: pick the version by the routing in force, take a concurrency place,
read the body within its size limit and deadline, parse it (refusing too many rows as soon
as they are counted) and coerce it (large bodies in a worker thread, so
health checks never wait behind a batch), predict through the version's micro-batcher, and
answer with the model's name, version and route in headers and, for v2, in the body.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from conveyor import __version__
from conveyor.serving.body import JsonAnswer, decode_text, media_type, parse_json, read_body
from conveyor.serving.inputs import Batch, RequestError
from conveyor.serving.protocols import mlflow as mlflow_protocol
from conveyor.serving.protocols import v2
from conveyor.serving.routing import CHALLENGER, PRIMARY, Route
from conveyor.serving.slot import ModelSlot
from conveyor.serving.state import ServingState, StateDep, answered_by, model_headers, prepare

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
    slot, route = state.route(request)  # this request finishes on this version, even across a swap
    answered_by(request, slot)
    kind = media_type(
        request.headers.get("content-type"), accepted=("application/json", "text/csv")
    )
    if probabilities and not slot.is_classifier:
        raise RequestError("probabilities=true: the model is a regressor; it has no classes")
    settings = state.settings
    max_rows = settings.max_batch_rows
    async with state.admission():
        body = await read_body(
            request, limit=settings.max_body_bytes, timeout=settings.body_timeout
        )
        text = kind == "text/csv"
        if text:

            def parse() -> Any:
                return mlflow_protocol.parse_csv(decode_text(body), slot.schema, max_rows=max_rows)
        else:

            def parse() -> Any:
                payload = parse_json(body)
                return mlflow_protocol.parse_payload(payload, slot.schema, max_rows=max_rows)

        raw, batch = await prepare(
            slot,
            parse,
            body_bytes=len(body),
            max_rows=max_rows,
            text=text,
            reject_unknown=settings.unknown_categories == "reject",
        )
        prediction = await state.predict(slot, batch, probabilities=probabilities)
    _record(state, slot, route, "/invocations", batch)
    state.remember(request, slot, prediction)
    if route.shadow:
        state.shadow(raw, prediction, text=text)
    return JsonAnswer(
        mlflow_protocol.predictions_body(slot, prediction), headers=model_headers(slot, route)
    )


def _record(state: ServingState, slot: ModelSlot, route: Route, path: str, batch: Batch) -> None:
    model = (slot.name, slot.version)
    state.metrics.count_rows(model=model, route=path, rows=batch.rows)
    state.metrics.count_routed(route.answer, slot.version)
    for column, count in batch.unknown.items():
        state.metrics.count_unknown(model, column, count)


# -- Open Inference Protocol v2 -------------------------------------------------------------
def _model(state: ServingState, name: str, version: str | None = None) -> ModelSlot:
    slot = state.require_slot()
    if name != slot.name:
        raise RequestError(f"unknown model {name!r}; this server serves {slot.name!r}", 404)
    if version is None:
        return slot
    for loaded in state.loaded():
        if loaded.version == version:
            return loaded
    versions = ", ".join(repr(s.version) for s in state.loaded())
    raise RequestError(
        f"model {name!r} has no version {version!r} loaded (loaded: {versions})", 404
    )


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
    """Metadata of the served model: inputs, outputs, loaded versions, runtime, routing."""
    answer = v2.model_metadata(_model(state, name))
    answer["versions"] = [s.version for s in state.loaded()]
    answer["parameters"]["routing"] = state.routing.model_dump()
    return answer


@v2_router.get("/models/{name}/versions/{version}")
async def v2_version_metadata(name: str, version: str, state: StateDep) -> dict[str, Any]:
    """Metadata of one loaded version (the served one, or the routing's second one)."""
    return v2.model_metadata(_model(state, name, version))


@v2_router.get("/models/{name}/ready")
async def v2_model_ready(name: str, state: StateDep) -> dict[str, Any]:
    """Model readiness."""
    return {"name": _model(state, name).name, "ready": True}


@v2_router.get("/models/{name}/versions/{version}/ready")
async def v2_version_ready(name: str, version: str, state: StateDep) -> dict[str, Any]:
    """Model version readiness."""
    return {"name": _model(state, name, version).name, "ready": True}


async def _infer(
    request: Request, state: ServingState, slot: ModelSlot, route: Route
) -> JSONResponse:
    answered_by(request, slot)
    media_type(request.headers.get("content-type"), accepted=("application/json",), missing_ok=True)
    settings = state.settings
    max_rows = settings.max_batch_rows
    async with state.admission():
        body = await read_body(
            request, limit=settings.max_body_bytes, timeout=settings.body_timeout
        )
        parsed: list[Any] = []

        def parse() -> Any:
            parsed.append(v2.parse_infer_request(parse_json(body), slot, max_rows=max_rows))
            return parsed[0].columns

        raw, batch = await prepare(
            slot,
            parse,
            body_bytes=len(body),
            max_rows=max_rows,
            reject_unknown=settings.unknown_categories == "reject",
        )
        wanted = parsed[0].outputs
        prediction = await state.predict(
            slot, batch, probabilities=wanted is None or v2.PROBABILITIES in wanted
        )
    path = getattr(request.scope.get("route"), "path", "/v2/models/{name}/infer")
    _record(state, slot, route, path, batch)
    state.remember(request, slot, prediction)
    if route.shadow:
        state.shadow(raw, prediction)
    answer = v2.infer_response(
        slot, prediction, request_id=parsed[0].id or _request_id(request), outputs=wanted
    )
    return JsonAnswer(answer, headers=model_headers(slot, route))


@v2_router.post("/models/{name}/infer", openapi_extra=V2_INFER_BODY)
async def v2_infer(name: str, request: Request, state: StateDep) -> JSONResponse:
    """Score one named tensor per input column; answer ``predictions`` (and probabilities).
    The routing in force picks the version that answers."""
    _model(state, name)
    slot, route = state.route(request)
    return await _infer(request, state, slot, route)


@v2_router.post("/models/{name}/versions/{version}/infer", openapi_extra=V2_INFER_BODY)
async def v2_version_infer(
    name: str, version: str, request: Request, state: StateDep
) -> JSONResponse:
    """Score on one loaded version, bypassing the routing."""
    slot = _model(state, name, version)
    variant = PRIMARY if slot is state.slot else CHALLENGER
    return await _infer(request, state, slot, Route(variant))
