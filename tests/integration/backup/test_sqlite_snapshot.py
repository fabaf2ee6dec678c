"""The online copy of a SQLite store is whole and consistent while another connection writes."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from conveyor.errors import BackupError
from conveyor.registry.snapshot import snapshot_sqlite

pytestmark = pytest.mark.integration


def _write_pairs(db: Path, stop: threading.Event, written: list[int]) -> None:
    """Insert rows two at a time, one transaction per pair, until told to stop."""
    conn = sqlite3.connect(db, timeout=60)
    conn.execute("PRAGMA synchronous = OFF")  # many small commits, fast
    try:
        n = 0
        while not stop.is_set():
            with conn:
                conn.execute("INSERT INTO pairs VALUES (?, 'a', randomblob(2048))", (n,))
                conn.execute("INSERT INTO pairs VALUES (?, 'b', randomblob(2048))", (n,))
            n += 1
            written.append(n)
    finally:
        conn.close()


def test_copies_taken_during_writes_hold_whole_transactions_only(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE pairs (n INTEGER, half TEXT, payload BLOB)")
    stop, written = threading.Event(), []
    writer = threading.Thread(target=_write_pairs, args=(db, stop, written))
    writer.start()
    copies = []
    try:
        while len(written) < 20:
            stop.wait(0.01)
        for index in range(5):
            copies.append(tmp_path / f"copy-{index}.db")
            snapshot_sqlite(db, copies[-1])
    finally:
        stop.set()
        writer.join(timeout=60)
    for copy in copies:
        with sqlite3.connect(copy) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            halves = conn.execute("SELECT n, count(*) FROM pairs GROUP BY n").fetchall()
        assert halves, "the copy holds no rows"
        assert {count for _, count in halves} == {2}, "a copy holds half a transaction"


def test_a_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="does not exist"):
        snapshot_sqlite(tmp_path / "nowhere.db", tmp_path / "copy.db")
