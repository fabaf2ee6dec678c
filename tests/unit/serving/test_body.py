"""Content type, UTF-8, JSON and nesting-depth checks on request bodies."""

from __future__ import annotations

import math

import pytest
from pydantic import BaseModel, ConfigDict

from conveyor.serving.body import decode_text, media_type, parse_json, parse_model
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
    ],
)
def test_malformed_json_is_400(body: bytes, message: str) -> None:
    with pytest.raises(RequestError, match=message) as err:
        parse_json(body)
    assert err.value.status == 400


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 33 + b"1" + b"]" * 33,  # valid JSON: orjson's path
        b"[NaN, " + b"[" * 33 + b"1" + b"]" * 34,  # NaN: the standard parser's path
        b"[" * 100_000,  # deeper than either parser's own recursion limit
        b"[NaN, " + b"[" * 100_000,
    ],
    ids=["orjson", "fallback", "orjson-very-deep", "fallback-very-deep"],
)
def test_json_nested_deeper_than_32_levels_is_400_naming_the_limit(body: bytes) -> None:
    with pytest.raises(RequestError, match="deeper than the limit of 32 levels") as err:
        parse_json(body)
    assert err.value.status == 400


def test_json_32_levels_deep_is_parsed_on_both_paths() -> None:
    assert parse_json(b"[" * 32 + b"1" + b"]" * 32) is not None
    assert math.isnan(parse_json(b"[NaN, " + b"[" * 31 + b"1" + b"]" * 32)[0])


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    sizes: list[int]


def test_a_body_that_does_not_fit_its_model_is_422_naming_the_field() -> None:
    assert parse_model(b'{"name": "a", "sizes": [1]}', Item) == Item(name="a", sizes=[1])
    with pytest.raises(RequestError, match=r"^sizes\.1: Input should be a valid integer") as err:
        parse_model(b'{"name": "a", "sizes": [1, "x"]}', Item)
    assert err.value.status == 422
    with pytest.raises(RequestError, match="deeper than the limit") as deep:
        parse_model(b'{"name": ' + b"[" * 40 + b"]" * 40 + b"}", Item)
    assert deep.value.status == 400
