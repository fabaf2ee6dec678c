"""Read a table in bounded chunks: CSV and Parquet (local or fsspec URL) and PostgreSQL.

For batch scoring of tables larger than memory. The same sources as ``data.source``;
CSV fields stay text (scoring parses them with the model's value rules, as the server
parses a CSV body), Parquet and SQL columns keep their types. Memory holds one chunk
at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.data.files import _is_url, _one_line, _open_binary, _sniff_header
from conveyor.data.sources import (
    Format,
    _db_error,
    _safe_url,
    _select_statement,
    _sqlalchemy_url,
    detect_format,
)
from conveyor.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from conveyor.config import DataConfig

__all__ = ["Chunk", "TableChunks", "open_chunks"]

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class Chunk:
    """One chunk of rows.

    Attributes:
        frame: the rows, raw (CSV: every column text).
        start: the index of its first row in the whole table (from 0).
        text: every value is CSV text.
    """

    frame: pd.DataFrame
    start: int
    text: bool


@dataclass(frozen=True)
class TableChunks:
    """A table opened for chunked reading.

    Attributes:
        source: what was opened (a URL's password hidden).
        format: ``csv``, ``parquet`` or ``sql``.
        total_rows: rows in the table when known without reading it (Parquet), else None.
        chunks: the chunks, in order (read lazily).
    """

    source: str
    format: Format
    total_rows: int | None
    chunks: Iterator[Chunk]


def open_chunks(config: DataConfig, *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> TableChunks:
    """Open ``config.source`` for reading ``chunk_rows`` rows at a time.

    Args:
        config: a ``data`` section (``source``, ``format``, ``table``/``query`` for SQL).
        chunk_rows: rows per chunk.

    Returns:
        The opened table; its chunks are read as they are iterated.

    Raises:
        DataError: the source is missing, unreadable or of unknown format (raised here
            for what can be checked up front, else while iterating).
    """
    fmt = detect_format(config)
    if fmt == "sql":
        return TableChunks(_safe_url(config.source), fmt, None, _sql_chunks(config, chunk_rows))
    source = config.source
    if not _is_url(source) and not Path(source).exists():
        raise DataError(f"data source not found: {source}")
    if fmt == "parquet":
        total, chunks = _parquet_chunks(source, chunk_rows)
        return TableChunks(source, fmt, total, chunks)
    return TableChunks(source, fmt, None, _csv_chunks(source, chunk_rows))


def _parquet_chunks(source: str, chunk_rows: int) -> tuple[int | None, Iterator[Chunk]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not _is_url(source) and Path(source).is_dir():
        dataset = pq.ParquetDataset(source)
        total = sum(f.metadata.num_rows for f in dataset.fragments)
        batches = (b for f in dataset.fragments for b in f.to_batches(batch_size=chunk_rows))
        return total, _from_batches(batches, source, text=False)
    try:
        # A plain file, not a memory map: mapped pages that were read stay resident and
        # would make the process's memory grow with the file.
        local = not _is_url(source)
        stream = pa.OSFile(source) if local else _open_binary(source, decompress=False)
        parquet = pq.ParquetFile(stream)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"cannot read {source} as Parquet: {_one_line(exc)}") from exc
    batches = parquet.iter_batches(batch_size=chunk_rows)
    return parquet.metadata.num_rows, _from_batches(batches, source, text=False)


def _csv_chunks(source: str, chunk_rows: int) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    delimiter, header = _sniff_header(source)
    convert = pcsv.ConvertOptions(
        column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False
    )
    try:
        reader = pcsv.open_csv(
            _open_binary(source),
            read_options=pcsv.ReadOptions(block_size=1 << 22),
            parse_options=pcsv.ParseOptions(delimiter=delimiter),
            convert_options=convert,
        )
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"cannot read {source} as CSV: {_one_line(exc)}") from exc
    yield from _from_batches(_rebatched(reader, chunk_rows), source, text=True)


def _rebatched(reader: Any, rows: int) -> Iterator[Any]:
    """Arrow batches of ``rows`` rows (the CSV reader's blocks are sized in bytes)."""
    import pyarrow as pa

    pending: list[Any] = []
    count = 0
    for batch in reader:
        pending.append(batch)
        count += batch.num_rows
        while count >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending)


def _from_batches(batches: Any, source: str, *, text: bool) -> Iterator[Chunk]:
    import pyarrow as pa

    start = 0
    try:
        for batch in batches:
            frame = batch.to_pandas(date_as_object=False)
            yield Chunk(frame, start, text)
            start += len(frame)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"cannot read {source} after row {start}: {_one_line(exc)}") from exc


def _sql_chunks(config: DataConfig, chunk_rows: int) -> Iterator[Chunk]:
    import pandas as pd
    import sqlalchemy as sa
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    if not (config.table or config.query):
        raise DataError(f"SQL source {_safe_url(config.source)} needs a table or a query")
    url = _sqlalchemy_url(config.source)
    engine = sa.create_engine(url, connect_args={"connect_timeout": 10})
    start = 0
    try:
        with engine.connect().execution_options(stream_results=True) as conn:
            statement = _select_statement(conn, config)
            for frame in pd.read_sql_query(
                statement, conn, coerce_float=True, chunksize=chunk_rows
            ):
                yield Chunk(frame, start, False)
                start += len(frame)
    except DBAPIError as exc:
        raise _db_error(exc, url) from exc
    except SQLAlchemyError as exc:
        raise DataError(f"cannot read from {_safe_url(url)}: {_one_line(exc)}") from exc
    finally:
        engine.dispose()
