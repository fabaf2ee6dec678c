"""Admin endpoints behind a bearer token: ``POST /admin/reload`` checks the alias now.

Without ``CONVEYOR_ADMIN_TOKEN`` the admin endpoints are off and answer 404, exactly as an
unknown path does. With it, a request must send ``Authorization: Bearer <token>``; the
comparison is constant-time (``hmac.compare_digest``) and a missing or wrong token is 401.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from conveyor.serving.state import StateDep

if TYPE_CHECKING:
    from conveyor.serving.follow import AliasFollower

__all__ = ["admin_router", "bearer_token", "require_admin", "token_matches"]

admin_router = APIRouter(prefix="/admin", tags=["admin"])


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None.

    Example:
        >>> bearer_token("Bearer s3cret")
        's3cret'
        >>> bearer_token("Basic dXNlcg==") is None
        True
    """
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def token_matches(authorization: str | None, expected: str) -> bool:
    """Whether the header carries ``expected``, compared in constant time."""
    token = bearer_token(authorization)
    if token is None:
        return False
    return hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8"))


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
    result = await _follower(request).check(forced=True)
    return JSONResponse(result.to_dict(), status_code=502 if result.error else 200)
