"""Content type, UTF-8 and JSON checks on request bodies."""

from __future__ import annotations

import math

import pytest

from conveyor.serving.body import decode_text, media_type, parse_json
from conveyor.serving.inputs import RequestError

ACCEPTED = ("application/json", "text/csv")


def test_media_type_accepts_listed_types_with_utf8_charset() -> None:
    assert media_type("Application/JSON; charset=UTF-8", accepted=ACCEPTED) == "application/json"
    assert media_type("text/csv", accepted=ACCEPTED) == "text/csv"
    assert media_type(None, accepted=ACCEPTED, missing_ok=True) == "application/json"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing Content-Type header"),
        ("text/plain", "unsupported Content-Type 'text/plain'"),
        ("text/csv; charset=latin-1", "unsupported charset 'latin-1'"),
    ],
)
def test_media_type_refusals_are_415(header: str | None, message: str) -> None:
    with pytest.raises(RequestError, match=message) as err:
        media_type(header, accepted=ACCEPTED)
    assert err.value.status == 415


def test_non_utf8_bytes_are_400_with_the_offset() -> None:
    with pytest.raises(RequestError, match="invalid byte at offset 3") as err:
        decode_text(b"abc\xff")
    assert err.value.status == 400


def test_json_nan_is_a_missing_number_and_infinity_is_refused() -> None:
    assert math.isnan(parse_json(b'{"a": NaN}')["a"])
    with pytest.raises(RequestError, match="Infinity is not allowed"):
        parse_json(b'{"a": Infinity}')


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty body"),
        (b"  \n", "empty body"),
        (b'{"a": }', "malformed JSON at line 1 column 7"),
        (b"[" * 100_000, "malformed JSON"),
    ],
)
def test_malformed_json_is_400(body: bytes, message: str) -> None:
    with pytest.raises(RequestError, match=message) as err:
        parse_json(body)
    assert err.value.status == 400
