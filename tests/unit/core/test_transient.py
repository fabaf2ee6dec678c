"""Transient failures (a retry may cure them) told apart from the rest, on real errors."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError

from conveyor.transient import is_transient, root_reason


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_refused_http_connection_is_transient() -> None:
    with pytest.raises(requests.ConnectionError) as err:
        requests.get(f"http://127.0.0.1:{_closed_port()}/", timeout=5)
    assert is_transient(err.value)


def test_a_wrapped_cause_is_found_down_the_chain() -> None:
    try:
        try:
            socket.create_connection(("127.0.0.1", _closed_port()), timeout=5)
        except OSError as exc:
            raise RuntimeError("API request failed") from exc
    except RuntimeError as wrapped:
        assert is_transient(wrapped)


def test_a_locked_sqlite_database_is_transient(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    holder = sqlite3.connect(db)
    holder.execute("create table t (x)")
    holder.execute("begin exclusive")
    other = sqlite3.connect(db, timeout=0)
    with pytest.raises(sqlite3.OperationalError, match="locked") as err:
        other.execute("select * from t")
    holder.close()
    other.close()
    assert is_transient(err.value)


@pytest.mark.parametrize(
    ("code", "status"), [("SlowDown", 503), ("InternalError", 500), ("Whatever", 502)]
)
def test_an_object_store_asking_to_retry_is_transient(code: str, status: int) -> None:
    response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    assert is_transient(ClientError(response, "PutObject"))  # type: ignore[arg-type]


def test_a_refused_permission_is_not_transient() -> None:
    response = {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}
    assert not is_transient(ClientError(response, "PutObject"))  # type: ignore[arg-type]


def test_a_plain_error_is_not_transient() -> None:
    assert not is_transient(ValueError("metric 'auc' is not computed"))


def test_a_failure_known_only_by_its_text_is_transient() -> None:
    gathered = RuntimeError(
        "The following failures occurred while downloading one or more artifacts:\n"
        "##### File model.skops #####\nHTTPConnectionPool(host='127.0.0.1', port=5000): Max"
        " retries exceeded with url: /get-artifact (Caused by NewConnectionError(...))"
    )
    assert is_transient(gathered)


def test_the_root_reason_is_the_innermost_cause_in_a_few_words() -> None:
    with pytest.raises(requests.ConnectionError) as err:
        requests.get(f"http://127.0.0.1:{_closed_port()}/", timeout=5)
    assert root_reason(err.value) == "Connection refused"
