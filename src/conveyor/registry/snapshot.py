"""Consistent copies of an MLflow store and the rewrite of its artifact locations.

A SQLite store is copied with SQLite's online backup (a reader's lock for the copy: a
run or server writing meanwhile is neither corrupted nor seen half done); a PostgreSQL
store with ``pg_dump`` (one transaction snapshot), restored with ``pg_restore``.

MLflow records where artifacts live as absolute locations: ``experiments.artifact_location``,
``runs.artifact_uri``, ``logged_models.artifact_location``, ``model_versions.source`` and
``storage_location``, and a trace's ``mlflow.artifactLocation`` tag. A store restored on
another machine or folder has these rewritten from the old root to the new one.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

from conveyor.errors import BackupError, ConfigError
from conveyor.redaction import redact

__all__ = [
    "LOCATION_COLUMNS",
    "LOCATION_TAGS",
    "Relocation",
    "StoreKind",
    "artifact_locations",
    "dump_postgres",
    "local_path",
    "relocate_artifacts",
    "restore_postgres",
    "snapshot_sqlite",
    "sqlite_file",
    "store_counts",
    "store_kind",
]

StoreKind = Literal["sqlite", "postgresql"]

LOCATION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
)
"""Every (table, column) of MLflow's schema that holds an artifact location."""

LOCATION_TAGS: tuple[tuple[str, str], ...] = (("trace_tags", "mlflow.artifactLocation"),)
"""Tag tables whose rows with this key hold an artifact location."""

PG_TIMEOUT_S = 3600


@dataclass(frozen=True)
class Relocation:
    """One artifact root moved: every location under ``old`` now lies under ``new``.

    Attributes:
        old: the root's absolute folder on the machine the store came from.
        new: the same root's folder now.
    """

    old: str
    new: str

    def prefixes(self) -> list[tuple[str, str]]:
        """(old, new) prefixes in both forms MLflow writes: ``file://`` URI and plain path."""
        old, new = self.old.rstrip("/") or "/", self.new.rstrip("/") or "/"
        return [(Path(old).as_uri(), Path(new).as_uri()), (old, new)]


def store_kind(uri: str) -> StoreKind:
    """Which kind of store a tracking URI names, for backup and restore.

    Raises:
        BackupError: a tracking server or another database (back it up where it runs).
    """
    scheme = uri.partition("://")[0].lower()
    if scheme == "sqlite":
        return "sqlite"
    if scheme.split("+")[0] in ("postgresql", "postgres"):
        return "postgresql"
    raise BackupError(
        f"tracking store {redact(uri)}: only a SQLite or PostgreSQL store can be backed up "
        "here; for a tracking server, back up its database and artifact store where it runs"
    )


def sqlite_file(uri: str) -> Path:
    """The database file of a ``sqlite:///`` URI."""
    return Path(uri.removeprefix("sqlite:///").partition("?")[0]).expanduser().resolve()


def local_path(location: str) -> Path | None:
    """The local folder of an artifact location (``file://`` or absolute path), else None."""
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and location.startswith("/"):
        return Path(location)
    return None


def snapshot_sqlite(db: Path, dest: Path) -> None:
    """Copy a SQLite database with SQLite's online backup.

    The copy is consistent even while another process writes: the backup reads under a
    shared lock, so it sees every transaction committed before it and none after.

    Raises:
        BackupError: the database is missing or unreadable.
    """
    if not db.is_file():
        raise BackupError(f"tracking store {db} does not exist")
    try:
        source = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=60)
        try:
            target = sqlite3.connect(dest)
            try:
                source.backup(target)
            finally:
                target.close()
        finally:
            source.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot copy the tracking store {db}: {exc}") from exc


def _sqlalchemy_url(uri: str) -> str:
    scheme, sep, rest = uri.partition("://")
    if scheme.split("+")[0].lower() in ("postgresql", "postgres"):
        return f"postgresql+psycopg{sep}{rest}"
    return uri


def _libpq(uri: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URL without its password, and the environment that carries it
    (so the password never shows in a process list)."""
    parsed = urlparse(uri)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if parsed.password:
        env["PGPASSWORD"] = unquote(parsed.password)
    netloc = parsed.netloc.rpartition("@")
    host = netloc[2]
    user = netloc[0].partition(":")[0] if netloc[1] else ""
    netloc_clean = f"{user}@{host}" if user else host
    return parsed._replace(scheme="postgresql", netloc=netloc_clean).geturl(), env


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} not found: install the PostgreSQL client tools (Debian: postgresql-client)"
        )
    return found


def _run_pg(argv: list[str], env: dict[str, str], what: str) -> None:
    try:
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=PG_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackupError(f"{what}: {exc}") from exc
    if done.returncode != 0:
        reason = next((ln for ln in done.stderr.splitlines() if ln.strip()), "no message")
        raise BackupError(f"{what} failed: {redact(reason)}")


def dump_postgres(uri: str, dest: Path) -> None:
    """``pg_dump`` a PostgreSQL store (custom format, one consistent snapshot).

    Raises:
        BackupError: pg_dump is missing or failed.
    """
    url, env = _libpq(uri)
    argv = [_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges"]
    _run_pg([*argv, f"--file={dest}", f"--dbname={url}"], env, f"pg_dump of {redact(uri)}")


def restore_postgres(uri: str, dump: Path) -> None:
    """``pg_restore`` a dump into a database that holds no MLflow store yet.

    Raises:
        ConfigError: the database already holds an MLflow store.
        BackupError: pg_restore is missing or failed.
    """
    if "experiments" in _tables(uri):
        raise ConfigError(
            f"--tracking-uri {redact(uri)}: the database already holds an MLflow store; "
            "restore into an empty database"
        )
    url, env = _libpq(uri)
    argv = [_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error"]
    _run_pg([*argv, f"--dbname={url}", str(dump)], env, f"pg_restore into {redact(uri)}")


def _engine(uri: str) -> Any:
    import sqlalchemy as sa

    return sa.create_engine(_sqlalchemy_url(uri), poolclass=sa.pool.NullPool)


def _tables(uri: str) -> set[str]:
    import sqlalchemy as sa

    engine = _engine(uri)
    try:
        return set(sa.inspect(engine).get_table_names())
    except sa.exc.SQLAlchemyError as exc:
        raise BackupError(f"cannot read the store {redact(uri)}: {_first(exc)}") from exc
    finally:
        engine.dispose()


def _first(exc: BaseException) -> str:
    return redact((str(exc).strip().splitlines() or [type(exc).__name__])[0])


def artifact_locations(uri: str) -> list[str]:
    """The artifact location of every experiment in a store (``sqlite:///`` or PostgreSQL).

    Raises:
        BackupError: the store cannot be read.
    """
    import sqlalchemy as sa

    engine = _engine(uri)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT artifact_location FROM experiments"))
            return sorted({str(r[0]) for r in rows if r[0]})
    except sa.exc.SQLAlchemyError as exc:
        raise BackupError(f"cannot read the experiments of {redact(uri)}: {_first(exc)}") from exc
    finally:
        engine.dispose()


def relocate_artifacts(uri: str, moves: Iterable[Relocation]) -> int:
    """Rewrite every artifact location of a store from each old root to its new one.

    A location is moved when it is the old root or lies below it (``old/...``), in the
    ``file://`` form or as a plain path; every other value is left as it is.

    Args:
        uri: the restored store (``sqlite:///`` or PostgreSQL).
        moves: the roots that moved.

    Returns:
        How many values were rewritten.

    Raises:
        BackupError: the store cannot be updated.
    """
    import sqlalchemy as sa

    engine = _engine(uri)
    changed = 0
    try:
        inspector = sa.inspect(engine)
        present = {
            t: {c["name"] for c in inspector.get_columns(t)} for t in inspector.get_table_names()
        }
        with engine.begin() as conn:
            for old, new in (p for move in moves for p in move.prefixes()):
                for table, column in LOCATION_COLUMNS:
                    if column in present.get(table, set()):
                        changed += _rewrite(conn, table, column, old, new)
                for table, key in LOCATION_TAGS:
                    if "value" in present.get(table, set()):
                        changed += _rewrite(conn, table, "value", old, new, key=key)
    except sa.exc.SQLAlchemyError as exc:
        raise BackupError(
            f"cannot rewrite artifact locations in {redact(uri)}: {_first(exc)}"
        ) from exc
    finally:
        engine.dispose()
    return changed


def _rewrite(conn: Any, table: str, column: str, old: str, new: str, *, key: str = "") -> int:
    import sqlalchemy as sa

    below = old.rstrip("/") + "/"
    where = f"({column} = :old OR substr({column}, 1, CAST(:n AS INTEGER)) = :below)"
    if key:
        where += " AND key = :key"
    statement = sa.text(
        f"UPDATE {table} SET {column} = CAST(:new AS TEXT) || "  # table and column: constants
        f"substr({column}, CAST(:cut AS INTEGER)) WHERE {where}"
    )
    params = {"old": old, "new": new, "n": len(below), "below": below, "cut": len(old) + 1}
    if key:
        params["key"] = key
    result = conn.execute(statement, params)
    return int(result.rowcount or 0)


def store_counts(uri: str) -> dict[str, int]:
    """How many registered models, model versions, aliases and runs a store holds.

    Raises:
        BackupError: the store cannot be read.
    """
    import sqlalchemy as sa

    tables = {
        "models": "registered_models",
        "versions": "model_versions",
        "aliases": "registered_model_aliases",
        "runs": "runs",
    }
    engine = _engine(uri)
    try:
        with engine.connect() as conn:
            return {
                what: int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
                for what, table in tables.items()
            }
    except sa.exc.SQLAlchemyError as exc:
        raise BackupError(f"cannot read the store {redact(uri)}: {_first(exc)}") from exc
    finally:
        engine.dispose()
