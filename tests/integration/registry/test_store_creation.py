"""A new SQLite store is created whole or not at all, even when its process dies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conveyor.registry import creation as store_module
from conveyor.registry.store import ModelRegistry

pytestmark = pytest.mark.integration


def test_a_creation_cut_short_leaves_no_store_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = store_module._open_stores

    def migrate_then_die(client: Any) -> None:
        real(client)
        raise KeyboardInterrupt  # as a Ctrl-C or a kill right after the migrations

    monkeypatch.setattr(store_module, "_open_stores", migrate_then_die)
    db = tmp_path / "mlflow.db"
    with pytest.raises(KeyboardInterrupt):
        _ = ModelRegistry(f"sqlite:///{db}").client
    assert not db.exists()
    assert list(tmp_path.glob(".mlflow.db.*")) == []


def test_leftovers_of_a_dead_creator_are_removed_and_the_store_opens(tmp_path: Path) -> None:
    leftover = tmp_path / ".mlflow.db.999999999.creating"
    leftover.write_bytes(b"half a database")
    registry = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert registry.list_models() == []
    assert not leftover.exists()


def _schema(db: Path) -> list[tuple[str, list[str]]]:
    """Each table's and index's definition as its set of clauses (a migration that rebuilds
    a table may write the same constraints in another order), and the alembic revision."""
    import re
    import sqlite3

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
        rows += conn.execute("SELECT 'alembic', version_num FROM alembic_version").fetchall()
    return [(name, sorted(re.split(r",\s*\n", sql or ""))) for name, sql in rows]


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home


def test_a_new_store_starts_from_the_migrated_template(
    tmp_path: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ModelRegistry(f"sqlite:///{tmp_path / 'first.db'}").list_models()

    def no_migrations(db: Path) -> None:
        raise AssertionError("the template exists: no migration should run")

    monkeypatch.setattr(store_module, "_migrate_tables", no_migrations)
    registry = ModelRegistry(f"sqlite:///{tmp_path / 'second.db'}")
    assert registry.list_models() == []


def test_the_template_is_kept_per_mlflow_version(tmp_path: Path, cache_home: Path) -> None:
    from importlib import metadata

    ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}").list_models()
    names = [p.name for p in (cache_home / "conveyor").iterdir()]
    assert names == [f"mlflow-{metadata.version('mlflow')}-tables.db"]


def test_a_store_from_the_template_has_the_schema_of_a_migrated_one(
    tmp_path: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copied = tmp_path / "copied.db"
    ModelRegistry(f"sqlite:///{copied}").list_models()
    monkeypatch.setattr(store_module, "migrated_template", lambda: None)
    migrated = tmp_path / "migrated.db"
    ModelRegistry(f"sqlite:///{migrated}").list_models()
    assert _schema(copied) == _schema(migrated)


def test_a_store_from_the_template_gets_its_own_default_experiment(
    tmp_path: Path, cache_home: Path
) -> None:
    ModelRegistry(f"sqlite:///{tmp_path / 'a.db'}").list_models()
    store = ModelRegistry(f"sqlite:///{tmp_path / 'b.db'}")
    experiments = store.client.search_experiments()
    assert [e.name for e in experiments] == ["Default"]


def test_an_unwritable_cache_folder_still_creates_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    registry = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert registry.list_models() == []


def test_a_failed_template_copy_is_a_clear_error_and_leaves_nothing(
    tmp_path: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from conveyor.errors import RegistryError

    def disk_full(src: Path, dst: Path) -> None:
        Path(dst).write_bytes(b"half a copy")
        raise OSError(28, "No space left on device")

    ModelRegistry(f"sqlite:///{tmp_path / 'first.db'}").list_models()  # the template exists
    monkeypatch.setattr(shutil, "copyfile", disk_full)
    db = tmp_path / "second.db"
    with pytest.raises(RegistryError, match="No space left on device"):
        _ = ModelRegistry(f"sqlite:///{db}").client
    assert not db.exists()
    assert list(tmp_path.glob(".second.db.*")) == []
