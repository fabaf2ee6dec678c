"""Reading tables from CSV, Parquet and gzip files, and the errors users see.

Reading from s3:// is tested against a real server in tests/integration/data_sources.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conveyor.config import DataConfig
from conveyor.data.sources import (
    RENAMED_COLUMNS_ATTR,
    detect_format,
    read_table,
    source_fingerprint,
)
from conveyor.errors import DataError

CSV = "id, age ,plan,joined\n1,42,basic,2021-03-15\n2, 37 ,premium,2021-04-01\n3,,basic,\n"


def _config(source: str | Path, **kwargs: Any) -> DataConfig:
    return DataConfig(source=str(source), target="plan", **kwargs)


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "age": [42.0, 37.0, None, 51.0],
            "plan": ["basic", "premium", "basic", None],
        }
    )


def test_csv_is_read_with_stripped_headers_and_typed_columns(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(CSV)

    df = read_table(_config(path))

    assert list(df.columns) == ["id", "age", "plan", "joined"]
    assert df.attrs[RENAMED_COLUMNS_ATTR] == {" age ": "age"}
    assert df["id"].tolist() == [1, 2, 3]
    assert df["plan"].tolist() == ["basic", "premium", "basic"]
    assert df["age"].tolist()[:2] == [42.0, 37.0]
    assert pd.isna(df["age"].iloc[2])
    assert pd.api.types.is_datetime64_any_dtype(df["joined"])
    assert df["joined"].isna().tolist() == [False, False, True]


def test_headers_are_kept_when_stripping_is_off(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(CSV)

    df = read_table(_config(path, strip_whitespace=False))

    assert " age " in df.columns
    assert RENAMED_COLUMNS_ATTR not in df.attrs


@pytest.mark.parametrize(("name", "sep"), [("t.tsv", "\t"), ("t.csv", ";"), ("t.txt", "|")])
def test_delimiter_is_detected(tmp_path: Path, name: str, sep: str) -> None:
    path = tmp_path / name
    path.write_text(f"a{sep}b{sep}plan\n1{sep}x, y{sep}basic\n2{sep}z{sep}premium\n")

    df = read_table(_config(path))

    assert list(df.columns) == ["a", "b", "plan"]
    assert df["b"].tolist() == ["x, y", "z"]


def test_forced_categorical_columns_keep_their_leading_zeros(tmp_path: Path) -> None:
    path = tmp_path / "stores.csv"
    path.write_text(" zip ,plan\n01234,basic\n10001,premium\n")

    df = read_table(_config(path, categorical_columns=["zip"]))

    assert df["zip"].tolist() == ["01234", "10001"]


def test_latin1_csv_is_read(tmp_path: Path) -> None:
    path = tmp_path / "cities.csv"
    path.write_bytes("city,plan\nMünchen,basic\nZürich,premium\n".encode("latin-1"))

    df = read_table(_config(path))

    assert df["city"].tolist() == ["München", "Zürich"]


def test_gzip_csv_is_decompressed(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv.gz"
    path.write_bytes(gzip.compress(CSV.encode()))

    df = read_table(_config(path))

    assert len(df) == 3
    assert df["plan"].tolist() == ["basic", "premium", "basic"]


def test_parquet_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "customers.parquet"
    _frame().to_parquet(path, index=False)

    pd.testing.assert_frame_equal(read_table(_config(path)), _frame(), check_dtype=False)


def test_max_rows_samples_parquet_rows_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "customers.parquet"
    _frame().to_parquet(path, index=False)

    sample = read_table(_config(path, max_rows=2))

    expected = _frame()[_frame()["id"].isin(sample["id"])].reset_index(drop=True)
    assert len(sample) == 2
    pd.testing.assert_frame_equal(sample, expected, check_dtype=False)


def test_max_rows_samples_csv_rows_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(CSV)

    ids = read_table(_config(path, max_rows=2))["id"].tolist()

    assert len(ids) == 2
    assert ids == sorted(ids)
    assert set(ids) <= {1, 2, 3}


def test_unknown_suffix_is_sniffed(tmp_path: Path) -> None:
    parquet = tmp_path / "export.data"
    _frame().to_parquet(parquet, index=False)
    text = tmp_path / "export.dat"
    text.write_text(CSV)

    assert detect_format(_config(parquet)) == "parquet"
    assert read_table(_config(parquet))["id"].tolist() == [1, 2, 3, 4]
    assert read_table(_config(text))["id"].tolist() == [1, 2, 3]


def test_explicit_format_wins_over_suffix(tmp_path: Path) -> None:
    path = tmp_path / "customers.parquet"
    path.write_text(CSV)

    assert read_table(_config(path, format="csv"))["id"].tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("postgresql://u:p@host/db", "sql"),
        ("postgres://host/db", "sql"),
        ("postgresql+psycopg://host/db", "sql"),
        ("s3://bucket/data/table.PQ", "parquet"),
        ("data/table.tsv.gz", "csv"),
    ],
)
def test_format_is_detected_from_scheme_and_suffix(source: str, expected: str) -> None:
    assert detect_format(_config(source)) == expected


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"

    with pytest.raises(DataError, match=r"^data source not found: .*nope\.csv$"):
        read_table(_config(path))


def test_ragged_csv_is_reported_as_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text("a,b,plan\n1,2,basic\n1,2,3,4,5\n")

    with pytest.raises(DataError, match=r"cannot read .*broken\.csv as CSV") as info:
        read_table(_config(path))
    assert "\n" not in str(info.value)


def test_corrupt_parquet_is_reported_as_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")

    with pytest.raises(DataError, match=r"cannot read .*broken\.parquet as Parquet"):
        read_table(_config(path))


def test_binary_file_of_unknown_format_says_what_was_tried(tmp_path: Path) -> None:
    path = tmp_path / "report.xlsx"
    path.write_bytes(b"PK\x03\x04\x00\x00binary")

    with pytest.raises(DataError, match=r"report\.xlsx.*not Parquet.*not CSV"):
        read_table(_config(path))


def test_sql_source_needs_table_or_query() -> None:
    config = DataConfig(source="postgresql://me:s3cret@localhost/db", target="y")

    with pytest.raises(DataError, match=r"data\.table or data\.query") as info:
        read_table(config)
    assert "s3cret" not in str(info.value)


def test_local_fingerprint_tracks_content_changes(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(CSV)
    first = source_fingerprint(_config(path))

    assert source_fingerprint(_config(path)) == first
    path.write_text(CSV + "4,50,basic,2021-05-01\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert source_fingerprint(_config(path)) != first


def test_parquet_folder_is_read_and_its_fingerprint_tracks_its_files(tmp_path: Path) -> None:
    folder = tmp_path / "dataset"
    folder.mkdir()
    _frame().to_parquet(folder / "part-0.parquet", index=False)
    first = source_fingerprint(_config(folder))

    assert read_table(_config(folder))["id"].tolist() == [1, 2, 3, 4]
    _frame().to_parquet(folder / "part-1.parquet", index=False)
    assert source_fingerprint(_config(folder)) != first
    assert len(read_table(_config(folder))) == 8


def test_fingerprint_of_missing_file_fails_and_of_sql_is_none(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data source not found"):
        source_fingerprint(_config(tmp_path / "nope.parquet"))
    sql = DataConfig(source="postgresql://localhost/db", target="y", table="t")
    assert source_fingerprint(sql) is None
