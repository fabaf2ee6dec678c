"""Admin endpoints behind a bearer token: ``POST /admin/reload`` checks the aliases now,
``GET``/``POST /admin/routing`` shows or changes the traffic routing of this process.

Without ``CONVEYOR_ADMIN_TOKEN`` the admin endpoints are off and answer 404, exactly as an
unknown path does. With it, a request must send ``Authorization: Bearer <token>``; the
comparison is constant-time (``hmac.compare_digest``) and a missing or wrong token is 401.
The token is checked before any byte of a body is read; a body (the routing) is then read
within :data:`ADMIN_MAX_BODY_BYTES` and ``body_timeout``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from conveyor.config import RoutingConfig
from conveyor.http_guard import bearer_token, token_matches
from conveyor.serving.body import body_schema, media_type, parse_model, read_body
from conveyor.serving.follow import share_routing
from conveyor.serving.state import ServingState, StateDep

if TYPE_CHECKING:
    from conveyor.serving.follow import AliasFollower

__all__ = ["ADMIN_MAX_BODY_BYTES", "admin_router", "bearer_token", "require_admin", "token_matches"]

logger = logging.getLogger(__name__)

ADMIN_MAX_BODY_BYTES = 64 * 1024
"""Admin request bodies (a routing: a few hundred bytes) larger than this get 413."""

admin_router = APIRouter(prefix="/admin", tags=["admin"])


async def require_admin(
    state: StateDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    """FastAPI dependency: 404 when admin is off, 401 without the right bearer token.

    Raises:
        HTTPException: 404 (no admin token configured) or 401 (missing or wrong token).
    """
    expected = state.settings.admin_token
    if expected is None:
        raise HTTPException(404, "Not Found")
    if not token_matches(authorization, expected.get_secret_value()):
        raise HTTPException(
            401, "a valid admin bearer token is required", {"WWW-Authenticate": "Bearer"}
        )


def _follower(request: Request) -> AliasFollower:
    follower: AliasFollower = request.app.state.follower
    return follower


@admin_router.post("/reload", dependencies=[Depends(require_admin)])
async def reload(request: Request) -> JSONResponse:
    """Check the model alias now; load, warm and swap in the version it points at.

    200 with ``previous_version``, ``current_version``, ``target_version`` and ``swapped``;
    502 with the same fields and ``error`` when the registry did not answer or the new
    version failed to load or warm (the previous version keeps serving).
    """
    follower = _follower(request)
    result = await follower.check(forced=True)
    second = await follower.check_challenger(forced=True)
    answer = result.to_dict()
    answer["challenger"] = second.to_dict() if second is not None else None
    return JSONResponse(answer, status_code=502 if result.error else 200)


def _routing_answer(state: ServingState) -> dict[str, Any]:
    second = state.challenger
    return {
        "routing": state.routing.model_dump(),
        "primary_version": state.slot.version if state.slot else None,
        "challenger_version": second.version if second else None,
    }


@admin_router.get("/routing", dependencies=[Depends(require_admin)])
async def get_routing(state: StateDep) -> dict[str, Any]:
    """The routing in force and the versions on each route."""
    return _routing_answer(state)


@admin_router.post(
    "/routing", dependencies=[Depends(require_admin)], openapi_extra=body_schema(RoutingConfig)
)
async def set_routing(request: Request, state: StateDep) -> JSONResponse:
    """Put a new routing in force (same fields as ``serving.routing`` in the project config).

    The second model is loaded and warmed first; when it cannot be (no such alias or
    version, or it fails to load), the answer is 409 with the reason and the routing in
    force does not change. The new routing applies here at once and is stored in the
    registered model's ``conveyor.routing`` tag, which every worker and replica applies at
    its next alias poll (``shared`` in the answer says whether storing worked).
    """
    media_type(request.headers.get("content-type"), accepted=("application/json",), missing_ok=True)
    body = await read_body(request, limit=ADMIN_MAX_BODY_BYTES, timeout=state.settings.body_timeout)
    routing = parse_model(body, RoutingConfig)
    result = await _follower(request).check_challenger(forced=True, routing=routing)
    if result is not None and result.error is not None:
        answer = {"error": f"routing not changed: {result.error}", **_routing_answer(state)}
        return JSONResponse(answer, status_code=409)
    logger.info("routing changed to %s", routing.model_dump())
    return JSONResponse({**_routing_answer(state), **await _share(state, routing)})


@admin_router.delete("/routing", dependencies=[Depends(require_admin)])
async def reset_routing(request: Request, state: StateDep) -> JSONResponse:
    """Forget the operator's routing: back to ``serving.routing`` of the config, here and
    (through the registry) in every worker and replica at its next poll."""
    shared = await _share(state, None)
    await _follower(request).check_challenger(forced=True, routing=state.settings.routing)
    logger.info("routing reset to the configured %s", state.settings.routing.model_dump())
    return JSONResponse({**_routing_answer(state), **shared})


async def _share(state: ServingState, routing: RoutingConfig | None) -> dict[str, Any]:
    """Store the routing in the registry for the other workers and replicas."""
    try:
        await anyio.to_thread.run_sync(share_routing, state.settings, routing)
    except Exception as exc:  # applied here; the others keep theirs until the registry answers
        logger.warning("routing applied here but not shared: %s", exc)
        return {"shared": False, "share_error": str(exc).splitlines()[0][:300]}
    return {"shared": True}
