"""``data.max_rows`` reads a seeded uniform sample of the whole file, in file order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conveyor.config import DataConfig
from conveyor.data import files
from conveyor.data.sources import read_table

ROWS = 5_000
SAMPLE = 300


def _config(source: Path, **kwargs: Any) -> DataConfig:
    return DataConfig(source=str(source), target="plan", **kwargs)


def _messy_csv(path: Path, rows: int = ROWS) -> Path:
    """Headers with hyphens, spaces and dots; '?' and 'NA' markers; numbers as text."""
    lines = ["row,work-class, hours per week ,x.y,income,plan"]
    for i in range(rows):
        hours = "?" if i % 7 == 0 else ("NA" if i % 11 == 0 else str(20 + i % 40))
        lines.append(
            f'{i},{"private" if i % 3 else "state-gov"},{hours},{i % 5}," {i * 3} ",b{i % 2}'
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def _rows(frame: pd.DataFrame) -> list[int]:
    return [int(v) for v in frame["row"]]


def test_csv_sample_has_exactly_max_rows_rows(tmp_path: Path) -> None:
    df = read_table(_config(_messy_csv(tmp_path / "t.csv"), max_rows=SAMPLE))
    assert len(df) == SAMPLE


def test_csv_sample_covers_the_whole_file(tmp_path: Path) -> None:
    df = read_table(_config(_messy_csv(tmp_path / "t.csv"), max_rows=SAMPLE))
    assert max(_rows(df)) >= ROWS * 0.95  # a head would stop at row 299


def test_csv_sample_keeps_file_order(tmp_path: Path) -> None:
    rows = _rows(read_table(_config(_messy_csv(tmp_path / "t.csv"), max_rows=SAMPLE)))
    assert rows == sorted(rows)


def test_csv_sample_is_the_same_on_every_read(tmp_path: Path) -> None:
    config = _config(_messy_csv(tmp_path / "t.csv"), max_rows=SAMPLE)
    pd.testing.assert_frame_equal(read_table(config), read_table(config))


def test_csv_sample_rows_read_as_a_whole_read_reads_them(tmp_path: Path) -> None:
    path = _messy_csv(tmp_path / "t.csv")
    sample = read_table(_config(path, max_rows=SAMPLE))
    whole = read_table(_config(path))
    expected = whole[whole["row"].isin(sample["row"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(sample, expected)


def test_csv_sample_keeps_text_markers_and_stripped_headers(tmp_path: Path) -> None:
    df = read_table(_config(_messy_csv(tmp_path / "t.csv"), max_rows=SAMPLE))
    assert list(df.columns) == ["row", "work-class", "hours per week", "x.y", "income", "plan"]
    assert {"?", "NA"} <= set(df["hours per week"])


def test_csv_smaller_than_max_rows_is_read_whole(tmp_path: Path) -> None:
    path = _messy_csv(tmp_path / "t.csv", rows=50)
    pd.testing.assert_frame_equal(
        read_table(_config(path, max_rows=SAMPLE)), read_table(_config(path))
    )


def test_csv_text_after_the_first_block_does_not_break_sampling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The streaming reader types columns from its first block; '?' comes much later.
    monkeypatch.setattr(files, "_CSV_BLOCK_BYTES", 4096)
    path = tmp_path / "late.csv"
    values = [str(i) if i < 4_000 else "?" for i in range(ROWS)]
    path.write_text("row,score,plan\n" + "".join(f"{i},{v},a\n" for i, v in enumerate(values)))
    df = read_table(_config(path, max_rows=SAMPLE, categorical_columns=None))
    assert "?" in set(df["score"])


def test_latin1_csv_is_sampled(tmp_path: Path) -> None:
    path = tmp_path / "cities.csv"
    body = "".join(f"{i},{'München' if i % 2 else 'Zürich'},a\n" for i in range(ROWS))
    path.write_bytes(("row,city,plan\n" + body).encode("latin-1"))
    df = read_table(_config(path, max_rows=SAMPLE))
    assert set(df["city"]) == {"München", "Zürich"}


def test_categorical_columns_keep_leading_zeros_in_a_sample(tmp_path: Path) -> None:
    path = tmp_path / "zips.csv"
    path.write_text("row,zip,plan\n" + "".join(f"{i},{i:05d},a\n" for i in range(ROWS)))
    df = read_table(_config(path, max_rows=SAMPLE, categorical_columns=["zip"]))
    assert all(len(z) == 5 for z in df["zip"])


def _sorted_table(rows: int = ROWS) -> pa.Table:
    return pa.table({"row": range(rows), "plan": [f"p{i % 3}" for i in range(rows)]})


def test_parquet_sample_covers_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(_sorted_table(), path, row_group_size=1_000)
    df = read_table(_config(path, max_rows=SAMPLE))
    assert len(df) == SAMPLE
    assert max(_rows(df)) >= ROWS * 0.95


def test_parquet_sample_keeps_file_order(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(_sorted_table(), path, row_group_size=1_000)
    rows = _rows(read_table(_config(path, max_rows=SAMPLE)))
    assert rows == sorted(rows)


def test_parquet_and_csv_of_one_table_sample_the_same_rows(tmp_path: Path) -> None:
    table = _sorted_table()
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=700)
    table.to_pandas().to_csv(tmp_path / "t.csv", index=False)
    parquet = read_table(_config(tmp_path / "t.parquet", max_rows=SAMPLE))
    csv = read_table(_config(tmp_path / "t.csv", max_rows=SAMPLE))
    assert _rows(parquet) == _rows(csv)


def test_parquet_folder_sample_covers_every_file(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    table = _sorted_table(6_000)
    for part in range(3):
        pq.write_table(table.slice(part * 2_000, 2_000), folder / f"part-{part}.parquet")
    rows = _rows(read_table(_config(folder, max_rows=SAMPLE)))
    assert len(rows) == SAMPLE
    assert rows == sorted(rows)
    assert {row // 2_000 for row in rows} == {0, 1, 2}


def test_parquet_smaller_than_max_rows_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(_sorted_table(50), path)
    pd.testing.assert_frame_equal(
        read_table(_config(path, max_rows=SAMPLE)), read_table(_config(path))
    )
