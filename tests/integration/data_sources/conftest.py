"""A real, throw-away PostgreSQL server for the SQL source tests.

The session fixture creates a cluster in a temp dir with ``initdb`` and starts it with
``pg_ctl`` on a free 127.0.0.1 port. PostgreSQL refuses to run as root, so as root the
binaries run as the ``postgres`` OS user. Host connections need a password (scram), so
tests can check that error messages never show it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

USER = "conveyor"
PASSWORD = "s3cret-Pa55"
DATABASE = "shop"
INSTALL_HINT = (
    "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; run `make test`,"
    " which installs the Debian package postgresql"
)


@dataclass(frozen=True)
class PostgresServer:
    """Where the test server listens."""

    port: int
    database: str = DATABASE
    user: str = USER
    password: str = PASSWORD

    def url(self, *, scheme: str = "postgresql", port: int | None = None) -> str:
        """A connection URL for ``read_table``."""
        return (
            f"{scheme}://{self.user}:{self.password}@127.0.0.1:{port or self.port}/{self.database}"
        )


def _bin_dir() -> Path:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not found:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run_as_postgres(args: list[str], *, cwd: Path) -> None:
    """Run a PostgreSQL binary, as the postgres OS user when we are root."""
    as_user: dict[str, Any] = {}
    if os.geteuid() == 0:
        as_user = {"user": "postgres", "group": "postgres", "extra_groups": []}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False, **as_user
    )
    if result.returncode != 0:
        pytest.fail(
            f"{Path(args[0]).name} failed ({result.returncode}): {result.stderr or result.stdout}",
            pytrace=False,
        )


@pytest.fixture
def unused_port() -> int:
    """A local TCP port nothing listens on."""
    return _free_port()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A running PostgreSQL server with database ``shop`` holding demo tables."""
    bin_dir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="conveyor-pg-"))  # /tmp: reachable by postgres
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres", group="postgres")
    data, sockets, pwfile = root / "data", root / "sock", root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    sockets.mkdir()
    if os.geteuid() == 0:
        for path in (pwfile, sockets):
            shutil.chown(path, user="postgres", group="postgres")
    port = _free_port()
    _run_as_postgres(
        [
            str(bin_dir / "initdb"),
            f"--pgdata={data}",
            f"--username={USER}",
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        ],
        cwd=root,
    )
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = str(bin_dir / "pg_ctl")
    _run_as_postgres(
        [
            pg_ctl,
            "-D",
            str(data),
            "-l",
            str(root / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        ],
        cwd=root,
    )
    try:
        server = PostgresServer(port=port)
        _load_demo_data(server)
        yield server
    finally:
        _run_as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], cwd=root)
        shutil.rmtree(root, ignore_errors=True)


def _load_demo_data(server: PostgresServer) -> None:
    """Create the database and two tables: ``customers`` (demo data) and ``sales.accounts``."""
    import psycopg
    import sqlalchemy as sa

    from conveyor.data.synthetic import make_demo_dataset

    admin = f"host=127.0.0.1 port={server.port} user={USER} password={PASSWORD} dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {DATABASE}")
    engine = sa.create_engine(server.url(scheme="postgresql+psycopg"))
    try:
        make_demo_dataset(500, seed=7, messy=False).to_sql("customers", engine, index=False)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE SCHEMA sales"))
            conn.execute(
                sa.text(
                    "CREATE TABLE sales.accounts (account_id SERIAL PRIMARY KEY,"
                    " balance NUMERIC(10, 2), opened DATE, tier TEXT, closed BOOLEAN)"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO sales.accounts (balance, opened, tier, closed)"
                    " SELECT (i * 1.25)::numeric(10, 2), DATE '2020-01-01' + i,"
                    " CASE WHEN i % 3 = 0 THEN ' gold ' WHEN i % 3 = 1 THEN 'silver' ELSE '?' END,"
                    " i % 4 = 0 FROM generate_series(1, 60) AS i"
                )
            )
    finally:
        engine.dispose()
