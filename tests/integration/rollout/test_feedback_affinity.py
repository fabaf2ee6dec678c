"""Feedback through HAProxy reaches the replica that answered the prediction.

Only that replica remembers the prediction's rows. Every answer carries HAProxy's cookie
``conveyor_replica`` naming it (deploy/rollout/haproxy.cfg); ``POST /feedback`` sent with
that cookie goes to that replica. Without it, feedback is balanced like any request and
the other replicas answer its ids as unknown: the control below shows that, so these
tests fail when persistence breaks. Feedback is posted one id at a time, grouped by
replica, so that round-robin alone cannot route it right by chance.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from tests.integration.rollout.conftest import Fleet
from tests.integration.serving.conftest import FEATURES, TARGET, make_table
from tests.traffic import cookie_header

pytestmark = pytest.mark.integration

COOKIE = "conveyor_replica"
TABLE = make_table(n=5, seed=9)
ROWS = TABLE[FEATURES].to_dict(orient="records")
LABELS = TABLE[TARGET].tolist()
PREDICTIONS = 9  # three per replica


@dataclass(frozen=True)
class Answer:
    """A prediction's request id and the ``Cookie`` header that sends back what it set."""

    request_id: str
    cookie: str | None


@pytest.fixture
def connection(fleet: Fleet) -> Iterator[http.client.HTTPConnection]:
    """One keep-alive connection to HAProxy, as a client without a cookie jar keeps."""
    opened = http.client.HTTPConnection("127.0.0.1", fleet.port, timeout=30)
    try:
        yield opened
    finally:
        opened.close()


def post(
    connection: http.client.HTTPConnection, path: str, body: object, cookie: str | None = None
) -> tuple[int, bytes, http.client.HTTPResponse]:
    headers = {"Content-Type": "application/json"}
    if cookie:
        headers["Cookie"] = cookie
    connection.request("POST", path, body=json.dumps(body).encode("utf-8"), headers=headers)
    answer = connection.getresponse()
    return answer.status, answer.read(), answer


def predict(
    connection: http.client.HTTPConnection, count: int = PREDICTIONS, cookie: str | None = None
) -> list[Answer]:
    answers = []
    for _ in range(count):
        body = {"dataframe_records": ROWS}
        status, text, answer = post(connection, "/invocations", body, cookie)
        assert status == 200, text
        request_id = answer.getheader("X-Request-Id")
        assert request_id
        set_cookies = answer.headers.get_all("Set-Cookie") or []
        answers.append(Answer(request_id, cookie_header(set_cookies)))
    return answers


def by_replica(answers: list[Answer]) -> list[Answer]:
    return sorted(answers, key=lambda a: a.cookie or "")


def feedback_one_by_one(
    connection: http.client.HTTPConnection, answers: list[Answer], *, with_cookie: bool
) -> dict[str, list[str]]:
    """One ``POST /feedback`` per answer, grouped by the replica that answered; the ids
    matched and unknown over all of them."""
    done: dict[str, list[str]] = {"matched": [], "unknown": []}
    for answer in by_replica(answers):
        item = {"request_id": answer.request_id, "labels": LABELS}
        cookie = answer.cookie if with_cookie else None
        status, text, _ = post(connection, "/feedback", {"feedback": [item]}, cookie)
        assert status == 200, text
        result: dict[str, Any] = json.loads(text)
        done["matched"] += result["matched"]
        done["unknown"] += result["unknown"]
    return done


def replica_cookies(fleet: Fleet) -> set[str]:
    """The ``Cookie`` header naming each replica in rotation (``rollout.py status``)."""
    replicas = fleet.status()["replicas"]
    assert all(r["cookie"] for r in replicas), replicas
    return {f"{COOKIE}={r['cookie']}" for r in replicas}


def test_each_answer_names_its_replica_and_every_replica_answers(
    fleet: Fleet, connection: http.client.HTTPConnection
) -> None:
    cookies = replica_cookies(fleet)
    answers = predict(connection)
    assert len(cookies) == 3
    assert {a.cookie for a in answers} == cookies  # round-robin over all three


def test_a_prediction_sent_with_a_cookie_is_still_balanced(
    fleet: Fleet, connection: http.client.HTTPConnection
) -> None:
    pinned = sorted(replica_cookies(fleet))[0]
    answers = predict(connection, cookie=pinned)
    assert {a.cookie for a in answers} == replica_cookies(fleet)


def test_feedback_sent_with_its_answer_cookie_is_matched(
    fleet: Fleet, connection: http.client.HTTPConnection
) -> None:
    answers = predict(connection)
    done = feedback_one_by_one(connection, answers, with_cookie=True)
    assert done == {"matched": [a.request_id for a in by_replica(answers)], "unknown": []}


def test_control_feedback_without_the_cookie_is_unknown_to_the_other_replicas(
    fleet: Fleet, connection: http.client.HTTPConnection
) -> None:
    answers = predict(connection)
    done = feedback_one_by_one(connection, answers, with_cookie=False)
    assert len(done["matched"]) + len(done["unknown"]) == PREDICTIONS
    assert done["unknown"], "round-robin matched every id: the test cannot tell persistence"


def test_after_a_rollout_old_cookies_fall_back_and_new_replicas_set_theirs(
    fleet: Fleet, connection: http.client.HTTPConnection
) -> None:
    before = predict(connection)
    result = fleet.run("rollout", "--model-uri", fleet.uri("next"))
    assert result.returncode == 0, result.stdout + result.stderr
    connection.close()  # idle longer than HAProxy's keep-alive timeout: open it again
    # the replicas that answered are gone: their feedback is answered by another, unknown
    gone = feedback_one_by_one(connection, before, with_cookie=True)
    assert gone == {"matched": [], "unknown": [a.request_id for a in by_replica(before)]}
    # the replicas the rollout added set their own cookies, and their feedback matches
    cookies = replica_cookies(fleet)
    after = predict(connection)
    assert {a.cookie for a in after} == cookies
    done = feedback_one_by_one(connection, after, with_cookie=True)
    assert done == {"matched": [a.request_id for a in by_replica(after)], "unknown": []}
