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
