"""Read a raw table from a file, an fsspec URL (s3://...) or PostgreSQL into a DataFrame.

Files go through pyarrow (``conveyor.data.files``); SQL through SQLAlchemy and psycopg 3.
With ``data.max_rows``, a seeded uniform sample of the whole table is drawn while it
streams past in bounded batches; a file that would not fit in memory is refused before
it is read. Header names are stripped here (when ``data.strip_whitespace``) and the
original names are kept in ``df.attrs["renamed_columns"]`` so that cleaning can report
them. Cleaning itself (markers, types, IDs) is ``conveyor.data.cleaning``'s job.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from conveyor.data.files import (
    _data_suffix,
    _is_url,
    _object_store_error,
    _one_line,
    _open_binary,
    _storage_options,
    read_file,
)
from conveyor.data.sampling import sample_frames
from conveyor.errors import DataError, SourceUnavailableError
from conveyor.redaction import redact

if TYPE_CHECKING:
    import pandas as pd

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
_PARQUET_SUFFIXES = {".parquet", ".pq"}
_CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
_PARQUET_MAGIC = b"PAR1"
_SQL_CHUNK_ROWS = 50_000  # rows per chunk while sampling a query's result


def read_table(config: DataConfig) -> pd.DataFrame:
    """Read the configured source into a DataFrame.

    Args:
        config: the ``data`` section; uses ``source``, ``format``, ``table``, ``query``,
            ``max_rows`` (a seeded uniform sample of the whole table, in file order),
            ``memory_check`` and ``strip_whitespace``.

    Returns:
        The raw table. Strings are pandas ``str`` columns, dates are ``datetime64``.

    Raises:
        DataError: the source is missing, unreadable, of unknown format, the database is
            unreachable, the table does not exist, or a file would not fit in memory (the
            message says which ``data.max_rows`` would).

    Example:
        >>> df = read_table(DataConfig(source="data/churn.csv", target="churned"))
    """
    fmt = detect_format(config)
    if fmt == "sql":
        df = _read_sql(config)
    else:
        df = read_file(config, fmt).to_pandas(date_as_object=False)
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
            conn.execution_options(stream_results=True)  # a server-side cursor: bounded memory
            chunks = pd.read_sql_query(
                statement, conn, coerce_float=True, chunksize=_SQL_CHUNK_ROWS
            )
            return sample_frames(chunks, config.max_rows, source=_display(config))
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
    return sa.select(table)


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


def _display(config: DataConfig) -> str:
    if config.source.lower().startswith(SQL_SCHEMES):
        what = config.table or "query"
        return f"{_safe_url(_sqlalchemy_url(config.source))} ({what})"
    return config.source
