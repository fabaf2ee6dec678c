"""Read a CSV or Parquet file (local path or fsspec URL) into an Arrow table.

CSV and Parquet go through pyarrow (multi-threaded, typed). With ``data.max_rows``, a
seeded uniform sample of the whole file is drawn while it streams past in bounded batches
(``conveyor.data.sampling``), so memory holds the sample and one batch. Unless
``data.memory_check`` is off, a file whose working set would not fit in memory is refused
before it is read, with the ``data.max_rows`` that would fit (``conveyor.data.footprint``).
Also the opening of local and remote files that ``conveyor.data.sources`` and
``conveyor.data.batches`` share.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from conveyor.data import footprint
from conveyor.data.footprint import COMPRESSED_CSV_RATIO, TableFootprint
from conveyor.data.sampling import sample_batches
from conveyor.errors import DataError, SourceUnavailableError
from conveyor.transient import is_transient

if TYPE_CHECKING:
    from collections.abc import Callable

    import pyarrow as pa

    from conveyor.config import DataConfig

__all__ = ["FileFormat", "read_file"]

logger = logging.getLogger(__name__)

FileFormat = Literal["csv", "parquet"]

_COMPRESSION_SUFFIXES = {".gz", ".bz2", ".zst", ".xz"}
_DELIMITERS = (",", "\t", ";", "|")
_SAMPLE_BATCH_ROWS = 65_536  # Parquet rows per batch while sampling
_CSV_BLOCK_BYTES = 1 << 20  # CSV bytes per batch while sampling (readahead holds a few)
_PROBE_ROWS = 2048  # Parquet rows read to learn the in-memory width of a row
_PROBE_BYTES = 1 << 18  # CSV bytes parsed to learn the in-memory width of a row


def read_file(config: DataConfig, fmt: FileFormat) -> pa.Table:
    """Read a CSV or Parquet file, whole or as a seeded uniform sample of ``data.max_rows``.

    Args:
        config: the ``data`` section; uses ``source``, ``max_rows``, ``memory_check`` and
            ``categorical_columns`` (CSV columns kept as text).
        fmt: ``"csv"`` or ``"parquet"``.

    Returns:
        The table, or the sampled rows in file order.

    Raises:
        DataError: the file is missing or unreadable, or it would not fit in memory
            (the message gives the estimate and a ``data.max_rows`` that would fit).
    """
    source = config.source
    if not _is_url(source) and not Path(source).exists():
        raise DataError(f"data source not found: {source}")
    if fmt == "parquet":
        return _read_parquet(config)
    return _read_csv(config)


def _check_memory(config: DataConfig, estimate: Callable[[], TableFootprint | None]) -> None:
    """Refuse the source up front when its working set would not fit in memory."""
    if not config.memory_check:
        return
    size = estimate()
    if size is not None:
        available = footprint.available_memory()
        footprint.check_fits(
            size, source=config.source, max_rows=config.max_rows, available=available
        )


def _read_parquet(config: DataConfig) -> pa.Table:
    import pyarrow as pa

    source = config.source
    try:
        if not _is_url(source) and Path(source).is_dir():
            return _read_parquet_folder(config)
        # A plain file, not a memory map, locally: mapped pages that were read stay
        # resident and would make the process's memory grow with the file while sampling.
        local = not _is_url(source)
        with pa.OSFile(source) if local else _open_binary(source, decompress=False) as stream:
            return _read_parquet_file(config, stream)
    except DataError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"cannot read {source} as Parquet: {_one_line(exc)}") from exc


def _read_parquet_file(config: DataConfig, stream: Any) -> pa.Table:
    import pyarrow.parquet as pq

    # Sampling a local file reads column chunks through a small buffer rather than a
    # whole row group at once: memory then holds the sample and about one batch.
    local_sample = config.max_rows is not None and not _is_url(config.source)
    buffered: dict[str, Any] = {"buffer_size": 1 << 20, "pre_buffer": False}
    parquet = pq.ParquetFile(stream, **(buffered if local_sample else {}))

    def estimate() -> TableFootprint:
        probe = next(parquet.iter_batches(batch_size=_PROBE_ROWS), None)
        return _parquet_footprint([parquet.metadata], probe)

    _check_memory(config, estimate)
    if config.max_rows is None:
        return parquet.read()
    batches = parquet.iter_batches(batch_size=_SAMPLE_BATCH_ROWS)
    return sample_batches(
        batches, config.max_rows, schema=parquet.schema_arrow, source=config.source
    )


def _read_parquet_folder(config: DataConfig) -> pa.Table:
    """A folder of Parquet files (hive partitions too), as ``pyarrow.parquet`` reads it."""
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    dataset = ds.dataset(config.source, format="parquet", partitioning="hive")

    def estimate() -> TableFootprint:
        metadata = [fragment.metadata for fragment in dataset.get_fragments()]
        return _parquet_footprint(metadata, dataset.head(_PROBE_ROWS))

    _check_memory(config, estimate)
    if config.max_rows is None:
        return pq.read_table(config.source)
    batches = dataset.to_batches(batch_size=_SAMPLE_BATCH_ROWS)  # in file order
    return sample_batches(batches, config.max_rows, schema=dataset.schema, source=config.source)


def _parquet_footprint(metadata: list[Any], probe: Any) -> TableFootprint:
    """In-memory size from the footers, and from a probe of the first rows: dictionary-
    encoded text is far smaller in the file than once decoded."""
    rows = sum(m.num_rows for m in metadata)
    stored = sum(m.row_group(i).total_byte_size for m in metadata for i in range(m.num_row_groups))
    decoded = probe.nbytes * rows // probe.num_rows if probe is not None and probe.num_rows else 0
    columns = metadata[0].num_columns if metadata else None
    return TableFootprint(nbytes=max(stored, decoded), rows=rows, columns=columns)


def _read_csv(config: DataConfig) -> pa.Table:
    """Read a CSV; ``categorical_columns`` stay text, keeping codes like '007'."""
    import pyarrow as pa

    source = config.source
    delimiter, header = _sniff_header(source)
    _check_memory(config, lambda: _csv_footprint(source, delimiter, columns=len(header)))
    text_columns = frozenset(config.categorical_columns or ())
    as_text = {raw: pa.string() for raw in header if raw.strip() in text_columns}
    try:
        if config.max_rows is not None:
            return _sample_csv(config, delimiter, column_types=as_text)
        table = _parse_csv(source, delimiter, encoding="utf8", column_types=as_text)
        if any(pa.types.is_binary(f.type) for f in table.schema):
            # pyarrow keeps undecodable text as bytes: the file is not UTF-8.
            logger.info("%s is not UTF-8; reading it as latin-1", source)
            table = _parse_csv(source, delimiter, encoding="latin-1", column_types=as_text)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(
            f"cannot read {source} as CSV (delimiter {delimiter!r}): {_one_line(exc)};"
            " set data.format if it is another format"
        ) from exc
    return table


def _csv_options(delimiter: str, column_types: dict[str, Any]) -> tuple[Any, Any]:
    """Parse and convert options of every CSV read."""
    import pyarrow.csv as pcsv

    # Only empty fields are null here: the configured na_values are applied (and counted)
    # by cleaning, after stripping spaces, which pyarrow's exact matching cannot do.
    convert = pcsv.ConvertOptions(
        null_values=[""], strings_can_be_null=False, column_types=column_types
    )
    return pcsv.ParseOptions(delimiter=delimiter), convert


def _parse_csv(
    source: str, delimiter: str, *, encoding: str, column_types: dict[str, Any]
) -> pa.Table:
    import pyarrow.csv as pcsv

    parse, convert = _csv_options(delimiter, column_types)
    with _open_binary(source) as stream:
        table: pa.Table = pcsv.read_csv(
            stream,
            read_options=pcsv.ReadOptions(encoding=encoding),
            parse_options=parse,
            convert_options=convert,
        )
    return table


def _sample_csv(config: DataConfig, delimiter: str, *, column_types: dict[str, Any]) -> pa.Table:
    """A seeded uniform sample of ``data.max_rows`` rows, typed as a whole read types them.

    The stream is read as text: pyarrow's streaming reader infers types from its first
    block only and fails on a later value that does not fit. The sampled rows are then
    parsed once more, as CSV, with the options of a whole read.
    """
    import io

    import pyarrow as pa
    import pyarrow.csv as pcsv

    try:
        text = _sample_csv_text(config, delimiter, encoding="utf8")
    except pa.ArrowInvalid as exc:
        if "UTF8" not in str(exc):
            raise
        logger.info("%s is not UTF-8; reading it as latin-1", config.source)
        text = _sample_csv_text(config, delimiter, encoding="latin-1")
    buffer = io.BytesIO()
    pcsv.write_csv(text, buffer)
    _, convert = _csv_options(delimiter, column_types)
    table: pa.Table = pcsv.read_csv(
        pa.py_buffer(buffer.getbuffer()),
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
        convert_options=convert,
    )
    return table


def _sample_csv_text(config: DataConfig, delimiter: str, *, encoding: str) -> pa.Table:
    """The sampled rows of a CSV, every column text."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    read = pcsv.ReadOptions(encoding=encoding, block_size=_CSV_BLOCK_BYTES)
    parse, _ = _csv_options(delimiter, {})
    with _open_binary(config.source) as stream:
        names = pcsv.open_csv(stream, read_options=read, parse_options=parse).schema.names
    _, convert = _csv_options(delimiter, dict.fromkeys(names, pa.string()))
    with _open_binary(config.source) as stream:
        reader = pcsv.open_csv(
            stream, read_options=read, parse_options=parse, convert_options=convert
        )
        size = config.max_rows or 1
        return sample_batches(reader, size, schema=reader.schema, source=config.source)


def _csv_footprint(source: str, delimiter: str, *, columns: int) -> TableFootprint | None:
    """The whole file's size in memory, from its size on disk and a parse of its head."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    size = _stored_size(source)
    if size is None:
        return None
    compressed = Path(source.split("?", 1)[0]).suffix.lower() in _COMPRESSION_SUFFIXES
    text_bytes = int(size * COMPRESSED_CSV_RATIO) if compressed else size
    head = _head(source, _PROBE_BYTES)
    whole = len(head) < _PROBE_BYTES
    head = head if whole else head[: head.rfind(b"\n") + 1]
    header_bytes = head.find(b"\n") + 1
    parse, convert = _csv_options(delimiter, {})
    try:
        probe = pcsv.read_csv(pa.py_buffer(head), parse_options=parse, convert_options=convert)
    except (pa.ArrowException, ValueError):
        probe = None
    if probe is None or probe.num_rows == 0 or header_bytes <= 0 or len(head) <= header_bytes:
        return TableFootprint(nbytes=text_bytes, rows=1, columns=columns, exact_rows=False)
    if whole:
        return TableFootprint(nbytes=probe.nbytes, rows=probe.num_rows, columns=columns)
    rows = round(probe.num_rows * (text_bytes - header_bytes) / (len(head) - header_bytes))
    nbytes = probe.nbytes * rows // probe.num_rows
    return TableFootprint(nbytes=nbytes, rows=max(rows, 1), columns=columns, exact_rows=False)


def _stored_size(source: str) -> int | None:
    """Bytes of a file or object as stored, or ``None`` when it cannot be learnt."""
    if not _is_url(source):
        return Path(source).stat().st_size
    import fsspec.core

    try:
        fs, path = fsspec.core.url_to_fs(source, **_storage_options(source))
        size = fs.info(path).get("size")
    except Exception as exc:  # the read that follows reports the store's failure
        logger.debug("size of %s unknown: %s", source, _one_line(exc))
        return None
    return int(size) if size is not None else None


def _sniff_header(source: str) -> tuple[str, list[str]]:
    """The delimiter (the most frequent of , TAB ; | in the first line) and header names."""
    import csv

    default = "\t" if _data_suffix(source) == ".tsv" else ","
    head = _head(source)
    first_line = head.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", errors="replace")
    counts = {d: first_line.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: (counts[d], d == default))
    delimiter = best if counts[best] > 0 else default
    return delimiter, next(csv.reader([first_line], delimiter=delimiter), [])


def _head(source: str, size: int = 65536) -> bytes:
    """The first ``size`` bytes of a file, decompressed."""
    try:
        with _open_binary(source) as stream:
            head: bytes = stream.read(size)
    except (OSError, EOFError, ValueError) as exc:
        raise DataError(f"cannot read {source}: {_one_line(exc)}") from exc
    return head


def _open_binary(source: str, *, decompress: bool = True) -> Any:
    """Open a local path (natively) or fsspec URL for binary reading.

    With ``decompress``, a .gz/.bz2/.zst/.xz suffix is decompressed on the fly.
    """
    if not _is_url(source):
        import pyarrow as pa

        if not Path(source).exists():
            raise DataError(f"data source not found: {source}")
        try:
            if decompress:
                return pa.input_stream(source, compression="detect")
            return pa.memory_map(source)  # random access, as Parquet needs
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(f"cannot open {source}: {_one_line(exc)}") from exc
    import fsspec

    compression = "infer" if decompress else None
    try:
        opened = fsspec.open(source, "rb", compression=compression, **_storage_options(source))
        opened.fs.invalidate_cache(opened.path)  # the object may have changed since last read
        return opened.open()
    except FileNotFoundError as exc:
        raise DataError(f"data source not found: {source}") from exc
    except Exception as exc:
        error = _object_store_error(f"cannot open {source}", exc)
        if error is None:  # not the store's failure: a bug shows as itself
            raise
        raise error from exc


def _object_store_error(what: str, exc: Exception) -> DataError | None:
    """SourceUnavailableError (exit 75) when the store did not answer, DataError for a
    failure a retry cannot cure, None for anything else."""
    if is_transient(exc):
        return SourceUnavailableError(
            f"{what}: the object store did not answer ({_one_line(exc)}); retry when it is"
            " reachable"
        )
    if isinstance(exc, PermissionError):
        return DataError(
            f"{what}: access denied ({_one_line(exc)}); check the credentials (for s3://:"
            " AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and that they may read it"
        )
    if isinstance(exc, OSError | ValueError | ImportError):
        return DataError(f"{what}: {_one_line(exc)}")
    return None


def _storage_options(source: str) -> dict[str, Any]:
    """fsspec options from the standard environment: the endpoint of an S3-compatible server
    (``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL``)."""
    if not source.startswith(("s3://", "s3a://")):
        return {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}


def _data_suffix(source: str) -> str:
    """The data suffix of a path or URL, looking through a compression suffix."""
    name = source.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1].lower()
    suffixes = Path(name).suffixes
    if suffixes and suffixes[-1] in _COMPRESSION_SUFFIXES:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _is_url(source: str) -> bool:
    return "://" in source


def _one_line(exc: BaseException | str, limit: int = 300) -> str:
    """An error's text on one line, shortened, without SQLAlchemy's background link."""
    text = str(exc).split("(Background on this error", 1)[0]
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
