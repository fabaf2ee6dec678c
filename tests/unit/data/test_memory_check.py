"""Reading a file refuses, before reading it, a table that would not fit in memory."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conveyor.config import DataConfig
from conveyor.data import footprint
from conveyor.data.sources import read_table
from conveyor.errors import DataError

ROWS = 20_000
# Far below what 20,000 rows need: the demo machine's memory scaled down to the test file.
SMALL_MEMORY = 200_000


def _config(source: Path, **kwargs: Any) -> DataConfig:
    return DataConfig(source=str(source), target="plan", **kwargs)


@pytest.fixture
def small_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(footprint, "available_memory", lambda: SMALL_MEMORY)


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.csv"
    rows = "".join(f"{i},{i * 1.5},customer-{i},p{i % 3}\n" for i in range(ROWS))
    path.write_text("id,spend,name,plan\n" + rows)
    return path


@pytest.fixture
def parquet_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.parquet"
    names = [f"customer-{i}" for i in range(ROWS)]
    table = pa.table({"id": range(ROWS), "name": names, "plan": ["p1"] * ROWS})
    pq.write_table(table, path)
    return path


def _refusal(config: DataConfig) -> str:
    with pytest.raises(DataError) as info:
        read_table(config)
    return str(info.value)


@pytest.mark.usefixtures("small_memory")
def test_too_large_csv_is_refused_naming_the_source(csv_file: Path) -> None:
    assert f"data.source {csv_file} does not fit in memory" in _refusal(_config(csv_file))


@pytest.mark.usefixtures("small_memory")
def test_csv_refusal_gives_the_estimate(csv_file: Path) -> None:
    assert re.search(r"about [\d,]+ rows x 4 columns, about [\d.]+ MB", _refusal(_config(csv_file)))


@pytest.mark.usefixtures("small_memory")
def test_parquet_refusal_counts_its_rows(parquet_file: Path) -> None:
    assert f"{ROWS:,} rows x 3 columns" in _refusal(_config(parquet_file))


@pytest.mark.usefixtures("small_memory")
def test_refusal_says_which_max_rows_would_fit(parquet_file: Path) -> None:
    found = re.search(r"set data\.max_rows to about ([\d,]+)", _refusal(_config(parquet_file)))
    assert found is not None
    fitting = int(found.group(1).replace(",", ""))
    assert len(read_table(_config(parquet_file, max_rows=fitting))) == fitting


@pytest.mark.usefixtures("small_memory")
def test_max_rows_below_the_limit_reads_a_sample(csv_file: Path) -> None:
    assert len(read_table(_config(csv_file, max_rows=500))) == 500


@pytest.mark.usefixtures("small_memory")
def test_memory_check_off_reads_the_whole_table(csv_file: Path) -> None:
    assert len(read_table(_config(csv_file, memory_check=False))) == ROWS


def test_enough_memory_reads_the_whole_table(
    csv_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(footprint, "available_memory", lambda: 10**12)
    assert len(read_table(_config(csv_file))) == ROWS


def test_available_memory_is_probed_on_this_machine() -> None:
    available = footprint.available_memory()
    assert available is not None
    assert available > 0
