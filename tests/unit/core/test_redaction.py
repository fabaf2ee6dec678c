"""Secrets are masked wherever they stand in a text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conveyor.redaction import redact, redact_tree

SECRETS = [
    ("postgresql://app:s3cret@db:5432/crm", "s3cret"),
    ("postgresql+psycopg://app:p@ss:w/rd!@db/crm?sslmode=require", "p@ss:w/rd!"),
    ("s3://bucket/key?X-Amz-Signature=abc123def&X-Amz-Expires=60", "abc123def"),
    ("https://h/x?X-Amz-Credential=AKIA%2F2026&X-Amz-Security-Token=tok9", "AKIA%2F2026"),
    ("https://h/x?X-Amz-Credential=AKIA%2F2026&X-Amz-Security-Token=tok9", "tok9"),
    ("postgresql://db/crm?user=app&password=hunter2", "hunter2"),
    ("http://127.0.0.1:9/hook?token=t0k3n", "t0k3n"),
    ("Authorization: Bearer eyJhbGciOi.J9x-y_z", "eyJhbGciOi.J9x-y_z"),
    ("env AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI conveyor run", "wJalrXUtnFEMI"),
    ("CONVEYOR_ADMIN_TOKEN='a b c' conveyor serve", "a b c"),
    ("cannot read from mysql://root:toor@10.0.0.1/db: refused", "toor"),
]


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_the_secret_is_gone(text: str, secret: str) -> None:
    assert secret not in redact(text)


@pytest.mark.parametrize(
    "text",
    [
        "s3://bucket/data/churn.csv",
        "https://example.org/a@b/c",
        "sqlite:////tmp/x/mlflow.db",
        "column 'age' row 3: expected a number",
        "postgresql://app@db/crm",
    ],
)
def test_text_without_secrets_is_unchanged(text: str) -> None:
    assert redact(text) == text


def test_the_user_host_and_path_stay_readable() -> None:
    shown = redact("postgresql://app:s3cret@db:5432/crm?sslmode=require")
    assert shown == "postgresql://app:***@db:5432/crm?sslmode=require"


def test_every_string_of_a_record_is_redacted() -> None:
    record = {"config": {"data": {"source": "postgresql://u:pw1@h/d"}}, "steps": ["x?token=t2"]}
    assert "pw1" not in str(redact_tree(record))
    assert "t2" not in str(redact_tree(record))


def test_log_records_of_any_logger_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from conveyor.redaction import redact_logs

    previous = logging.getLogRecordFactory()
    try:
        redact_logs()
        redact_logs()  # idempotent: one layer
        with caplog.at_level(logging.WARNING, logger="some.library"):
            logging.getLogger("some.library").warning("connecting to %s", "s3://k:pw9@h/b")
    finally:
        logging.setLogRecordFactory(previous)
    assert "pw9" not in caplog.text
    assert "s3://k:***@h/b" in caplog.text


@pytest.fixture
def redacting() -> Iterator[None]:
    import logging

    from conveyor.redaction import redact_logs

    previous = logging.getLogRecordFactory()
    redact_logs()
    try:
        yield
    finally:
        logging.setLogRecordFactory(previous)


def test_plain_log_arguments_stay_arguments_for_formatters_that_read_them(
    redacting: None,
) -> None:
    import logging

    record = logging.getLogger("uvicorn.access").makeRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s"', ("1.2.3.4", "GET", "/x"), None
    )
    assert record.args == ("1.2.3.4", "GET", "/x")


def test_a_secret_in_an_object_argument_is_redacted(redacting: None) -> None:
    import logging

    class Url:
        def __str__(self) -> str:
            return "postgresql://u:pw77@db/x"

    record = logging.getLogger("lib").makeRecord(
        "lib", logging.INFO, __file__, 1, "to %s", (Url(),), None
    )
    assert "pw77" not in record.getMessage()
