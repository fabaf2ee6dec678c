"""The admin bearer token: parsing the header and comparing it."""

from __future__ import annotations

import pytest

from conveyor.serving.admin import bearer_token, token_matches

TOKEN = "a-long-enough-admin-token"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"Bearer {TOKEN}", TOKEN),
        (f"bearer {TOKEN}", TOKEN),
        (f"  Bearer   {TOKEN}  ", TOKEN),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer ", None),
        (f"Basic {TOKEN}", None),
        (TOKEN, None),
    ],
)
def test_bearer_token_reads_only_the_bearer_scheme(
    header: str | None, expected: str | None
) -> None:
    assert bearer_token(header) == expected


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (f"Bearer {TOKEN}", True),
        (f"Bearer {TOKEN}x", False),
        (f"Bearer {TOKEN[:-1]}", False),
        (f"Bearer {TOKEN.upper()}", False),
        (f"Basic {TOKEN}", False),
        (None, False),
        ("Bearer é-non-ascii", False),
    ],
)
def test_token_matches_only_the_exact_token(header: str | None, matches: bool) -> None:
    assert token_matches(header, TOKEN) is matches
