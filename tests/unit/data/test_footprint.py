"""The up-front memory check: a table whose working set would not fit is refused."""

from __future__ import annotations

import re

import pytest

from conveyor.data.footprint import WORKING_FACTOR, TableFootprint, check_fits
from conveyor.errors import DataError

GB = 10**9
# 10 million rows of 100 bytes: a 1 GB table.
TABLE = TableFootprint(nbytes=GB, rows=10_000_000, columns=12)


def _refusal(available: int, max_rows: int | None = None) -> str:
    with pytest.raises(DataError) as info:
        check_fits(TABLE, source="data/big.csv", max_rows=max_rows, available=available)
    return str(info.value)


def test_a_table_that_fits_passes() -> None:
    check_fits(TABLE, source="t.csv", max_rows=None, available=int(WORKING_FACTOR * GB) + 1)


def test_a_table_too_large_is_refused_naming_the_source() -> None:
    assert "data.source data/big.csv" in _refusal(GB)


def test_the_refusal_gives_the_estimate() -> None:
    message = _refusal(GB)
    assert "10,000,000 rows x 12 columns, about 1.0 GB in memory" in message


def test_the_refusal_gives_the_available_memory() -> None:
    assert "but 1.0 GB is available" in _refusal(GB)


def test_the_refusal_names_a_max_rows_that_fits() -> None:
    message = _refusal(GB)
    found = re.search(r"set data\.max_rows to about ([\d,]+)", message)
    assert found is not None
    fitting = int(found.group(1).replace(",", ""))
    check_fits(TABLE, source="t.csv", max_rows=fitting, available=GB)


def test_max_rows_below_the_limit_passes() -> None:
    check_fits(TABLE, source="t.csv", max_rows=1_000_000, available=GB)


def test_max_rows_above_the_limit_is_refused() -> None:
    assert "(a sample of 5,000,000 rows)" in _refusal(GB, max_rows=5_000_000)


def test_an_estimated_row_count_is_marked_approximate() -> None:
    estimated = TableFootprint(nbytes=GB, rows=10_000_000, columns=None, exact_rows=False)
    with pytest.raises(DataError, match=r"about 10,000,000 rows, about 1\.0 GB"):
        check_fits(estimated, source="t.csv", max_rows=None, available=GB)


def test_unknown_available_memory_checks_nothing() -> None:
    check_fits(TABLE, source="t.csv", max_rows=None, available=None)
