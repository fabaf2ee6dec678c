"""Read a raw table from a file, an fsspec URL (s3://...) or PostgreSQL into a DataFrame.

CSV and Parquet go through pyarrow (multi-threaded, typed); SQL through SQLAlchemy and
psycopg 3. Header names are stripped here (when ``data.strip_whitespace``) and the
original names are kept in ``df.attrs["renamed_columns"]`` so that cleaning can report
them. Cleaning itself (markers, types, IDs) is ``conveyor.data.cleaning``'s job.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from conveyor.errors import DataError, SourceUnavailableError
from conveyor.redaction import redact
from conveyor.transient import is_transient

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from conveyor.config import DataConfig

__all__ = [
    "RENAMED_COLUMNS_ATTR",
    "SQL_SCHEMES",
    "detect_format",
    "read_table",
    "source_fingerprint",
]

logger = logging.getLogger(__name__)

Format = Literal["csv", "parquet", "sql"]

# Key of ``DataFrame.attrs`` holding {original header: stripped header}.
RENAMED_COLUMNS_ATTR = "renamed_columns"

SQL_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://", "postgresql+psycopg2://")
_COMPRESSION_SUFFIXES = {".gz", ".bz2", ".zst", ".xz"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}
_CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
_DELIMITERS = (",", "\t", ";", "|")
_PARQUET_MAGIC = b"PAR1"


def read_table(config: DataConfig) -> pd.DataFrame:
    """Read the configured source into a DataFrame.

    Args:
        config: the ``data`` section; uses ``source``, ``format``, ``table``, ``query``,
            ``max_rows`` and ``strip_whitespace``.

    Returns:
        The raw table. Strings are pandas ``str`` columns, dates are ``datetime64``.

    Raises:
        DataError: the source is missing, unreadable, of unknown format, the database is
            unreachable or the table does not exist.

    Example:
        >>> df = read_table(DataConfig(source="data/churn.csv", target="churned"))
    """
    fmt = detect_format(config)
    if fmt == "sql":
        df = _read_sql(config)
    else:
        text_columns = frozenset(config.categorical_columns or ())
        table = _read_file(config.source, fmt, max_rows=config.max_rows, text_columns=text_columns)
        df = table.to_pandas(date_as_object=False)
    if config.strip_whitespace:
        df = _strip_headers(df, config.source)
    logger.info("read %s rows x %s columns from %s", len(df), df.shape[1], _display(config))
    return df


def source_fingerprint(config: DataConfig) -> str | None:
    """A cheap identity of the source's current content, without reading the data.

    Args:
        config: the ``data`` section.

    Returns:
        A sha256 hex digest: of (absolute path, size, mtime_ns) for a local file, of the
        object's ETag/size/mtime for an fsspec URL; ``None`` for SQL sources, whose
        content cannot be known without reading them.

    Raises:
        DataError: the file or object does not exist or cannot be inspected.
    """
    if detect_format(config, sniff=False) == "sql":
        return None
    source = config.source
    parts = _remote_identity(source) if _is_url(source) else _local_identity(source)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _local_identity(source: str) -> list[str]:
    """Absolute path, size and mtime_ns of a file (of each file, for a Parquet folder)."""
    path = Path(source).expanduser().absolute()
    try:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        return [f"{p}|{p.stat().st_size}|{p.stat().st_mtime_ns}" for p in files] or [str(path)]
    except FileNotFoundError as exc:
        raise DataError(f"data source not found: {source}") from exc
    except OSError as exc:
        raise DataError(f"cannot inspect data source {source}: {_one_line(exc)}") from exc


def detect_format(config: DataConfig, *, sniff: bool = True) -> Format:
    """The reader for a source: the configured one, else from its scheme and suffix.

    Args:
        config: the ``data`` section.
        sniff: for an unknown suffix, peek at the first bytes (Parquet magic, binary
            content) instead of assuming CSV.

    Returns:
        ``"csv"``, ``"parquet"`` or ``"sql"``.

    Raises:
        DataError: when sniffing, the source is missing or binary but not Parquet.
    """
    if config.format != "auto":
        return config.format
    source = config.source
    if source.lower().startswith(SQL_SCHEMES):
        return "sql"
    suffix = _data_suffix(source)
    if suffix in _PARQUET_SUFFIXES:
        return "parquet"
    if suffix in _CSV_SUFFIXES or not sniff:
        return "csv"
    return _sniff_format(source, suffix)


def _sniff_format(source: str, suffix: str) -> Format:
    """Parquet (a directory, or PAR1 magic), CSV (text), or an error for binary content."""
    if not _is_url(source) and Path(source).is_dir():
        return "parquet"
    with _open_binary(source) as stream:
        head = stream.read(4096)
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    if b"\x00" in head:
        raise DataError(
            f"cannot read {source}: unknown suffix {suffix or '(none)'!r}, not Parquet (no PAR1"
            " header) and not CSV (binary content); supported: .csv, .tsv, .txt (also .gz),"
            " .parquet, .pq, postgresql://"
        )
    return "csv"


# --- files ------------------------------------------------------------------------------


def _read_file(
    source: str, fmt: Format, *, max_rows: int | None, text_columns: frozenset[str] = frozenset()
) -> pa.Table:
    """Read a CSV or Parquet file (local or fsspec URL) into an Arrow table."""
    if not _is_url(source) and not Path(source).exists():
        raise DataError(f"data source not found: {source}")
    if fmt == "parquet":
        return _read_parquet(source, max_rows=max_rows)
    return _read_csv(source, max_rows=max_rows, text_columns=text_columns)


def _read_parquet(source: str, *, max_rows: int | None) -> pa.Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if not _is_url(source) and Path(source).is_dir():
            table = pq.read_table(source)
            return table if max_rows is None else table.slice(0, max_rows)
        with _open_binary(source, decompress=False) as stream:
            parquet = pq.ParquetFile(stream)
            if max_rows is None:
                return parquet.read()
            batches = []
            rows = 0
            for batch in parquet.iter_batches(batch_size=min(max_rows, 65536)):
                batches.append(batch)
                rows += batch.num_rows
                if rows >= max_rows:
                    break
            table = pa.Table.from_batches(batches, schema=parquet.schema_arrow)
            return table.slice(0, max_rows)
    except DataError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"cannot read {source} as Parquet: {_one_line(exc)}") from exc


def _read_csv(source: str, *, max_rows: int | None, text_columns: frozenset[str]) -> pa.Table:
    """Read a CSV; ``text_columns`` (stripped names) stay text, keeping codes like '007'."""
    import pyarrow as pa

    delimiter, header = _sniff_header(source)
    as_text = {raw: pa.string() for raw in header if raw.strip() in text_columns}
    try:
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
    return table if max_rows is None else table.slice(0, max_rows)


def _parse_csv(
    source: str, delimiter: str, *, encoding: str, column_types: dict[str, Any]
) -> pa.Table:
    import pyarrow.csv as pcsv

    # Only empty fields are null here: the configured na_values are applied (and counted)
    # by cleaning, after stripping spaces, which pyarrow's exact matching cannot do.
    convert = pcsv.ConvertOptions(
        null_values=[""], strings_can_be_null=False, column_types=column_types
    )
    with _open_binary(source) as stream:
        table: pa.Table = pcsv.read_csv(
            stream,
            read_options=pcsv.ReadOptions(encoding=encoding),
            parse_options=pcsv.ParseOptions(delimiter=delimiter),
            convert_options=convert,
        )
    return table


def _sniff_header(source: str) -> tuple[str, list[str]]:
    """The delimiter (the most frequent of , TAB ; | in the first line) and header names."""
    import csv

    default = "\t" if _data_suffix(source) == ".tsv" else ","
    try:
        with _open_binary(source) as stream:
            head = stream.read(65536)
    except (OSError, EOFError, ValueError) as exc:
        raise DataError(f"cannot read {source}: {_one_line(exc)}") from exc
    first_line = head.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", errors="replace")
    counts = {d: first_line.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: (counts[d], d == default))
    delimiter = best if counts[best] > 0 else default
    return delimiter, next(csv.reader([first_line], delimiter=delimiter), [])


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


def _remote_identity(source: str) -> list[str]:
    """ETag, size and modification time of a remote object, as strings."""
    import fsspec.core

    try:
        fs, path = fsspec.core.url_to_fs(source, **_storage_options(source))
        fs.invalidate_cache(path)
        info: dict[str, Any] = fs.info(path)
    except FileNotFoundError as exc:
        raise DataError(f"data source not found: {source}") from exc
    except Exception as exc:
        error = _object_store_error(f"cannot inspect data source {source}", exc)
        if error is None:  # not the store's failure: a bug shows as itself
            raise
        raise error from exc
    keys = ("ETag", "etag", "size", "mtime", "LastModified", "last_modified", "created")
    return [source] + [f"{key}={info[key]}" for key in keys if info.get(key) is not None]


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


# --- SQL --------------------------------------------------------------------------------


def _read_sql(config: DataConfig) -> pd.DataFrame:
    import pandas as pd
    import sqlalchemy as sa
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchTableError, SQLAlchemyError

    if not (config.table or config.query):
        raise DataError(
            f"SQL source {_safe_url(config.source)} needs data.table or data.query to read"
        )
    url = _sqlalchemy_url(config.source)
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 10})
    except (ArgumentError, ImportError, ValueError) as exc:
        raise DataError(f"invalid database URL {_safe_url(url)}: {_one_line(exc)}") from exc
    try:
        with engine.connect() as conn:
            statement = _select_statement(conn, config)
            if config.max_rows is None:
                return pd.read_sql_query(statement, conn, coerce_float=True)
            chunks = pd.read_sql_query(
                statement, conn, coerce_float=True, chunksize=config.max_rows
            )
            first: pd.DataFrame | None = next(iter(chunks), None)
            return first if first is not None else pd.DataFrame()
    except NoSuchTableError as exc:
        raise DataError(_missing_table_message(engine, config.table or "", url)) from exc
    except DBAPIError as exc:
        raise _db_error(exc, url) from exc
    except pd.errors.DatabaseError as exc:  # pandas wraps errors raised by the query
        cause = exc.__cause__
        if isinstance(cause, DBAPIError):
            raise _db_error(cause, url) from exc
        raise DataError(f"query on {_safe_url(url)} failed: {_one_line(exc)}") from exc
    except SQLAlchemyError as exc:
        raise DataError(f"cannot read from {_safe_url(url)}: {_one_line(exc)}") from exc
    finally:
        engine.dispose()


def _select_statement(conn: Any, config: DataConfig) -> Any:
    """A SELECT for the configured table (reflected, so a missing one fails) or query."""
    import sqlalchemy as sa

    if config.query:
        return sa.text(config.query.strip().rstrip(";"))
    schema, _, name = (config.table or "").rpartition(".")
    table = sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=conn)
    statement = sa.select(table)
    return statement if config.max_rows is None else statement.limit(config.max_rows)


def _missing_table_message(engine: Any, table: str, url: str) -> str:
    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError

    schema = table.rpartition(".")[0] or None
    try:
        available = sorted(sa.inspect(engine).get_table_names(schema=schema))
    except SQLAlchemyError:
        available = []
    listed = ", ".join(available[:10]) if available else "none"
    return f"table {table!r} not found in database {_safe_url(url)} (tables: {listed})"


def _sqlalchemy_url(source: str) -> str:
    """Normalise postgres:// and postgresql:// to SQLAlchemy's psycopg 3 dialect."""
    scheme, sep, rest = source.partition("://")
    if scheme.lower() in {"postgres", "postgresql", "postgresql+psycopg2"}:
        return f"postgresql+psycopg{sep}{rest}"
    return source


# A refused or timed-out connection may succeed later; a refused login or a missing
# database will not, and retrying it would only hide the mistake.
_PERMANENT_CONNECT_FAILURES = ("authentication failed", "does not exist", "no password")


def _db_error(exc: Any, url: str) -> DataError:
    """The error for a driver failure: transient for an unreachable server, else DataError."""
    message = _db_error_message(exc, url)
    permanent = any(p in message for p in _PERMANENT_CONNECT_FAILURES)
    if message.startswith("cannot connect") and not permanent:
        return SourceUnavailableError(message)
    return DataError(message)


def _db_error_message(exc: Any, url: str) -> str:
    """One line for a driver error: a connection failure or a failed query."""
    import psycopg

    where = _safe_url(url)
    driver = exc.orig
    # The driver's first line is the message; later lines quote the SQL with a caret.
    reason = next((ln for ln in str(driver or exc).splitlines() if ln.strip()), "unknown error")
    connecting = isinstance(driver, psycopg.OperationalError) and "connect" in str(driver).lower()
    if exc.connection_invalidated or connecting:
        return f"cannot connect to database {where}: {_one_line(reason)}"
    return f"query on {where} failed: {_one_line(reason)}"


def _safe_url(url: str) -> str:
    """A database URL with its password (and any secret parameter) masked."""
    return redact(url)


# --- helpers ----------------------------------------------------------------------------


def _strip_headers(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Strip spaces from header names, keeping the originals in ``df.attrs``."""
    names = [str(c) for c in df.columns]
    stripped = [n.strip() for n in names]
    renamed = {old: new for old, new in zip(names, stripped, strict=True) if old != new}
    if not renamed:
        return df
    if len(set(stripped)) != len(stripped):
        dupes = sorted({n for n in stripped if stripped.count(n) > 1})
        raise DataError(f"{source}: duplicate column name {dupes[0]!r} after stripping spaces")
    df = df.set_axis(stripped, axis="columns")
    df.attrs[RENAMED_COLUMNS_ATTR] = renamed
    logger.info("stripped spaces from %s header names in %s", len(renamed), source)
    return df


def _data_suffix(source: str) -> str:
    """The data suffix of a path or URL, looking through a compression suffix."""
    name = source.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1].lower()
    suffixes = Path(name).suffixes
    if suffixes and suffixes[-1] in _COMPRESSION_SUFFIXES:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _is_url(source: str) -> bool:
    return "://" in source


def _display(config: DataConfig) -> str:
    if config.source.lower().startswith(SQL_SCHEMES):
        what = config.table or "query"
        return f"{_safe_url(_sqlalchemy_url(config.source))} ({what})"
    return config.source


def _one_line(exc: BaseException | str, limit: int = 300) -> str:
    """An error's text on one line, shortened, without SQLAlchemy's background link."""
    text = str(exc).split("(Background on this error", 1)[0]
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
