"""The prediction fast path's own logic: which paths it takes, and the query flag."""

from __future__ import annotations

import itertools

import pytest

from conveyor.serving.fastpath import (
    INVOCATIONS,
    V2_INFER,
    V2_VERSION_INFER,
    match_prediction,
    query_flag,
)
from conveyor.serving.inputs import RequestError
from conveyor.serving.metrics import RequestIds


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/invocations", (INVOCATIONS, ())),
        ("/v2/models/churn/infer", (V2_INFER, ("churn",))),
        ("/v2/models/churn/versions/3/infer", (V2_VERSION_INFER, ("churn", "3"))),
        ("/invocations/", None),  # FastAPI answers these (redirect, 404, 405)
        ("/v2/models//infer", None),
        ("/v2/models/churn/versions//infer", None),
        ("/v2/models/a/b/infer", None),
        ("/v2/models/churn/ready", None),
        ("/v2/models/churn/versions/3/other/infer", None),
        ("/healthz", None),
    ],
)
def test_only_the_prediction_routes_take_the_fast_path(path: str, expected: object) -> None:
    assert match_prediction(path) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"", False),
        (b"other=1", False),
        (b"probabilities=true", True),
        (b"probabilities=True", True),
        (b"probabilities=1", True),
        (b"probabilities=yes", True),
        (b"probabilities=false", False),
        (b"probabilities=0", False),
        (b"probabilities=true&probabilities=false", False),  # the last value wins
    ],
)
def test_the_flag_reads_booleans_as_fastapi_does(query: bytes, expected: bool) -> None:
    assert query_flag(query, "probabilities") is expected


def test_a_flag_that_is_not_a_boolean_is_a_422_naming_it() -> None:
    with pytest.raises(RequestError, match="probabilities: Input should be a valid boolean") as err:
        query_flag(b"probabilities=maybe", "probabilities")
    assert err.value.status == 422


def test_request_ids_are_32_hex_characters_and_unique() -> None:
    ids = RequestIds()
    made = {ids.new() for _ in range(1000)}
    assert len(made) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in made)


def test_request_ids_share_no_prefix_a_client_could_count_on() -> None:
    ids = RequestIds()
    made = [ids.new() for _ in range(2000)]
    # 128 random bits each: no common prefix, and no two ids one increment apart
    assert len({i[:8] for i in made}) > 1990
    numbers = sorted(int(i, 16) for i in made)
    assert min(b - a for a, b in itertools.pairwise(numbers)) > 1


def test_a_client_that_went_away_is_counted_as_499_not_as_a_server_error() -> None:
    import asyncio
    from typing import Any

    from starlette.requests import ClientDisconnect, Request
    from starlette.types import Message, Receive, Scope, Send

    from conveyor.serving.error_responses import client_gone
    from conveyor.serving.metrics import CLIENT_GONE, RequestTelemetry, ServingMetrics

    metrics = ServingMetrics()

    async def disconnecting(scope: Scope, receive: Receive, send: Send) -> None:
        await client_gone(Request(scope), ClientDisconnect())  # what either path answers

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        return None

    app = RequestTelemetry(disconnecting, metrics=metrics, model=lambda: ("m", "1"))
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/", "headers": []}
    asyncio.run(app(scope, receive, send))
    assert scope["state"][CLIENT_GONE] is True
    labels = {"model": "m", "version": "1", "route": "unmatched", "status": "499"}
    assert metrics.registry.get_sample_value("conveyor_requests_total", labels) == 1.0
