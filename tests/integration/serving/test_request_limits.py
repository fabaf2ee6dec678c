"""Request limits and authentication on a real server: body size per route, the token
checked before the body is read, the body deadline, JSON depth, rows counted while
parsing, request ids, health answers, and no 5xx for any hostile body."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import httpx
import pytest
from tests.integration.rawhttp import (
    Trickle,
    connect,
    head,
    read_answer,
    send_raw,
    wait_until,
)
from tests.integration.serving.conftest import FEATURES, MODEL, launch, metric_value, rows_payload

from conveyor.registry.store import ModelRegistry

pytestmark = pytest.mark.integration

ADMIN = secrets.token_urlsafe(24)
FEEDBACK = secrets.token_urlsafe(24)
FEEDBACK_LIMIT = 4096
ADMIN_LIMIT = 64 * 1024
BODY_TIMEOUT_S = 5  # room to see a slow body in flight on a busy machine before its 408
INFER = f"/v2/models/{MODEL}/infer"
JSON = "application/json"


@pytest.fixture(scope="module")
def server(
    store: tuple[ModelRegistry, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A server with both tokens, a small feedback limit and a short body deadline."""
    registry, _ = store
    options = ["--max-batch-rows", "500", "--max-body-bytes", "200000"]
    options += ["--feedback-max-body-bytes", str(FEEDBACK_LIMIT)]
    options += ["--body-timeout", str(BODY_TIMEOUT_S)]
    options += ["--poll-interval", "0", "--drain-seconds", "0"]
    env = {"CONVEYOR_ADMIN_TOKEN": ADMIN, "CONVEYOR_FEEDBACK_TOKEN": FEEDBACK}
    folder = tmp_path_factory.mktemp("limits-server")
    uri = f"models:/{MODEL}@champion"
    with launch(registry.tracking_uri, uri, folder, *options, env=env) as (_, url, _):
        yield url


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def predict(url: str, rows: int = 1, request_id: str | None = None) -> httpx.Response:
    headers = {"X-Request-Id": request_id} if request_id else {}
    answer = httpx.post(f"{url}/invocations", json=rows_payload(rows), headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer


def feedback(url: str, request_id: str, labels: list[str]) -> httpx.Response:
    body = {"feedback": [{"request_id": request_id, "labels": labels}]}
    return httpx.post(f"{url}/feedback", json=body, headers=bearer(FEEDBACK), timeout=30)


# -- authentication --------------------------------------------------------------------
def test_feedback_needs_its_bearer_token(server: str) -> None:
    request_id = predict(server).headers["x-request-id"]
    body = {"feedback": [{"request_id": request_id, "labels": [">50K"]}]}
    refused = httpx.post(f"{server}/feedback", json=body, timeout=30)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert "feedback bearer token" in refused.json()["message"]
    admin_token = httpx.post(f"{server}/feedback", json=body, headers=bearer(ADMIN), timeout=30)
    assert admin_token.status_code == 401  # each token opens its own door
    accepted = feedback(server, request_id, [">50K"])
    assert accepted.status_code == 200 and accepted.json()["matched"] == [request_id]


@pytest.mark.parametrize("path", ["/feedback", "/admin/routing"])
def test_a_wrong_token_is_refused_before_the_body_is_read(server: str, path: str) -> None:
    # 3,000 bytes announced, 10 sent: reading the body first would wait for the rest
    # until the body deadline (408); checking the token first answers 401 at once
    headers = {"Content-Type": JSON, "Authorization": "Bearer wrong-token-0123456789"}
    headers["Content-Length"] = "3000"
    with connect(server) as sock:
        sock.sendall(head(path, headers) + b'{"feedback')
        answer = read_answer(sock)
    assert answer.status == 401, answer.body


# -- body size, deadline, depth, rows ---------------------------------------------------
@pytest.mark.parametrize(
    ("path", "token", "size", "limit"),
    [
        ("/feedback", FEEDBACK, FEEDBACK_LIMIT + 1, FEEDBACK_LIMIT),
        ("/admin/routing", ADMIN, ADMIN_LIMIT + 1, ADMIN_LIMIT),
        ("/invocations", None, 200_001, 200_000),
    ],
    ids=["feedback", "admin-routing", "invocations"],
)
@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_a_body_over_its_routes_limit_is_413(
    server: str, path: str, token: str | None, size: int, limit: int, chunked: bool
) -> None:
    body = b" " * size
    content = iter([body[: size // 2], body[size // 2 :]]) if chunked else body
    headers = {"Content-Type": JSON, **(bearer(token) if token else {})}
    answer = httpx.post(f"{server}{path}", content=content, headers=headers, timeout=30)
    assert answer.status_code == 413, answer.text
    assert f"exceeds the limit of {limit} bytes" in answer.json()["message"]


def test_a_slow_body_gets_408_and_gives_its_place_back(server: str) -> None:
    headers = {"Content-Type": JSON, "Content-Length": "1000"}
    with connect(server) as sock:
        sock.sendall(head("/invocations", headers) + b'{"dataframe_split": ')
        with Trickle(sock) as trickle:
            wait_until(lambda: metric_value(server, "conveyor_requests_in_flight") == 1)
            answer = read_answer(sock)
            assert sock.recv(1) == b""  # and the server closed the connection
        assert trickle.sent >= 1  # it was still sending when the deadline came
    assert answer.status == 408
    assert answer.headers["connection"] == "close"
    message = answer.json()["message"]
    assert f"did not arrive within {BODY_TIMEOUT_S} s (body_timeout)" in message
    assert metric_value(server, "conveyor_requests_in_flight") == 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/invocations", b'{"inputs": ' + b"[" * 33 + b"]" * 33 + b"}"),
        ("/invocations", b'{"inputs": [NaN, ' + b"[" * 40 + b"]" * 40 + b"]}"),
        (INFER, b'{"inputs": ' + b"[" * 100_000),
        ("/feedback", b'{"feedback": ' + b"[" * 40 + b"]" * 40 + b"}"),
    ],
    ids=["invocations", "invocations-nan", "v2-very-deep", "feedback"],
)
def test_json_nested_too_deep_is_400_naming_the_limit(server: str, path: str, body: bytes) -> None:
    headers = {"Content-Type": JSON, **bearer(FEEDBACK)}
    answer = httpx.post(f"{server}{path}", content=body, headers=headers, timeout=30)
    assert answer.status_code == 400, answer.text
    assert "deeper than the limit of 32 levels" in answer.text


def test_csv_rows_over_the_limit_are_422_naming_it(server: str) -> None:
    text = ",".join(FEATURES) + "\n" + "40,38,nurse\n" * 501
    headers = {"Content-Type": "text/csv"}
    answer = httpx.post(f"{server}/invocations", content=text, headers=headers, timeout=30)
    assert answer.status_code == 422
    assert "more than 500 rows exceeds the limit of 500 rows" in answer.json()["message"]


def test_v2_rows_over_the_limit_are_422_naming_it(server: str) -> None:
    tensors = [{"name": "age", "shape": [501], "datatype": "FP64", "data": [40.0] * 501}]
    answer = httpx.post(f"{server}{INFER}", json={"inputs": tensors}, timeout=30)
    assert answer.status_code == 422
    assert "batch of 501 rows exceeds the limit of 500 rows" in answer.json()["error"]


# -- request ids and health ---------------------------------------------------------------
def test_a_reused_request_id_never_replaces_remembered_predictions(server: str) -> None:
    caller_id = f"order-{secrets.token_hex(4)}"
    first = predict(server, rows=1, request_id=caller_id)
    second = predict(server, rows=2, request_id=caller_id)
    assert first.headers["x-request-id"] == caller_id
    issued = second.headers["x-request-id"]
    assert issued != caller_id and len(issued) == 32
    labels_first = first.json()["predictions"]
    assert feedback(server, caller_id, labels_first).json()["matched"] == [caller_id]
    assert feedback(server, issued, second.json()["predictions"]).json()["matched"] == [issued]
    assert feedback(server, caller_id, labels_first).json()["unknown"] == [caller_id]


def test_server_issued_request_ids_share_no_prefix(server: str) -> None:
    ids = [predict(server).headers["x-request-id"] for _ in range(5)]
    assert len({i[:16] for i in ids}) == 5
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_health_answers_tell_nothing_about_the_host(
    server: str, store: tuple[ModelRegistry, str]
) -> None:
    _, version = store
    expected = {
        "/healthz": {"status": "alive"},
        "/readyz": {"status": "ready", "model": MODEL, "version": version},
        "/v2/health/live": {"live": True},
        "/v2/health/ready": {"ready": True},
    }
    for path, body in expected.items():
        answer = httpx.get(f"{server}{path}", timeout=10)
        assert answer.json() == body
        assert set(answer.headers) == {"content-type", "content-length", "date", "x-request-id"}


# -- hostile bodies --------------------------------------------------------------------
HUGE_INT = b"9" * 5000
HOSTILE_BODIES: dict[str, bytes] = {
    "deep-arrays": b"[" * 200_000,
    "deep-objects": b'{"a":' * 5_000,
    "huge-numbers": b'{"inputs": [[1e999999, ' + HUGE_INT + b', "nurse"]], "feedback": '
    b'[{"request_id": "x", "labels": [' + HUGE_INT + b"]}]}",
    "nan-and-huge": b'{"feedback": [{"request_id": "x", "labels": [NaN, ' + HUGE_INT + b"]}]}",
    "not-utf8": b'{"inputs": [[1, 2, "\xff\xfe"]], "mode": "\xc3\x28"}',
    "lone-surrogate": b'{"mode": "\\udfff", "inputs": [[NaN, 1, "\\ud800"]], "x": "\\ud800"}',
    "lone-surrogate-id": b'{"id": "\\ud800", "inputs": [{"name": "age", "shape": [1], '
    b'"datatype": "FP64", "data": [NaN]}, {"name": "hours", "shape": [1], "datatype": "FP64", '
    b'"data": [1]}, {"name": "job", "shape": [1], "datatype": "BYTES", "data": ["nurse"]}]}',
    "lone-surrogate-feedback": b'{"feedback": [{"request_id": "\\ud800", "labels": [NaN]}]}',
    "null": b"null",
    "string": b'"text"',
    "wrong-types": b'{"inputs": {"age": {"x": 1}}, "feedback": "x", "mode": [1], "weight": "x"}',
    "wrong-nested-types": b'{"feedback": [{"request_id": 5, "labels": {"a": 1}}], '
    b'"dataframe_split": {"columns": [1], "data": 5}}',
    "empty": b"",
}
ROUTES = [
    ("/invocations", {"Content-Type": JSON}),
    ("/invocations", {"Content-Type": "text/csv"}),
    (INFER, {"Content-Type": JSON}),
    ("/feedback", {"Content-Type": JSON, **bearer(FEEDBACK)}),
    ("/admin/routing", {"Content-Type": JSON, **bearer(ADMIN)}),
]
ABSURD_HEADERS: dict[str, dict[str, str]] = {
    "length-too-large": {"Content-Length": "9" * 25},
    "length-negative": {"Content-Length": "-1"},
    "length-not-a-number": {"Content-Length": "ten"},
    "length-superscript": {"Content-Length": "\u00b9\u00b2"},
    "length-and-chunked": {"Content-Length": "5", "Transfer-Encoding": "chunked"},
    "charset-utf16": {"Content-Type": "application/json; charset=utf-16"},
}


def raw_post(url: str, path: str, headers: dict[str, str], body: bytes) -> int:
    return send_raw(url, head(path, {**headers, "Content-Length": str(len(body))}) + body).status


def test_hostile_bodies_get_a_4xx_on_every_route(server: str) -> None:
    answers: dict[str, int] = {}
    for path, headers in ROUTES:
        route = f"{path} ({headers['Content-Type']})"
        for name, body in HOSTILE_BODIES.items():
            answers[f"{route} {name}"] = raw_post(server, path, headers, body)
        for name, absurd in ABSURD_HEADERS.items():
            request = head(path, {**headers, **absurd}) + b'{"inputs": []}'
            answers[f"{route} {name}"] = send_raw(server, request).status
        oversized = iter([b"[" + b"1," * 60_000, b"1]"] * 2)  # chunked, past every limit
        chunked = httpx.post(f"{server}{path}", content=oversized, headers=headers, timeout=30)
        answers[f"{route} chunked-oversize"] = chunked.status_code
    server_errors = {case: status for case, status in answers.items() if not 400 <= status < 500}
    assert not server_errors, json.dumps(server_errors, indent=1)
    assert len(answers) == len(ROUTES) * (len(HOSTILE_BODIES) + len(ABSURD_HEADERS) + 1)
    assert httpx.get(f"{server}/readyz", timeout=10).status_code == 200
