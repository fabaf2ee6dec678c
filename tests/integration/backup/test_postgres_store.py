"""Backup and restore of a project whose MLflow store is a real PostgreSQL database."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from tests.integration.data_sources.conftest import PostgresServer
from tests.integration.serving.conftest import FEATURES, MODEL, make_table, register_model

from conveyor.config import load_config
from conveyor.errors import ConfigError
from conveyor.pipeline.backup import create_backup
from conveyor.pipeline.project import Project
from conveyor.pipeline.restore import restore_backup
from conveyor.registry.snapshot import artifact_locations
from conveyor.registry.store import ModelRegistry
from conveyor.settings import Settings

pytestmark = pytest.mark.integration


def _database(server: PostgresServer, name: str) -> str:
    admin = (
        f"host=127.0.0.1 port={server.port} user={server.user} "
        f"password={server.password} dbname=postgres"
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.url(scheme="postgresql+psycopg").rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="module", autouse=True)
def signing_key() -> Iterator[None]:
    """A store on PostgreSQL signs with the key from the environment, on both machines."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVEYOR_SIGNING_KEY", "a-signing-key-for-the-shared-store-0123")
        yield


@pytest.fixture(scope="module")
def stores(postgres: PostgresServer) -> tuple[str, str]:
    """An MLflow store database to back up and an empty one to restore into."""
    return _database(postgres, "mlflow_old"), _database(postgres, "mlflow_new")


@pytest.fixture(scope="module")
def archived(
    stores: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, ModelRegistry, pd.DataFrame]]:
    """A project on the old store with two versions, backed up; its artifacts then lost."""
    old_store, _ = stores
    machine = tmp_path_factory.mktemp("old-machine")
    artifacts = machine / "artifacts"
    registry = ModelRegistry(old_store, artifact_root=artifacts.as_uri())
    table = make_table()
    register_model(registry, table, machine, key="v1")
    register_model(registry, make_table(seed=12), machine, key="v2", promote=False)
    registry.set_version_tags(MODEL, "2", {"reviewed": "yes"})
    config = machine / "conveyor.yaml"
    config.write_text(
        f"name: {MODEL}\ndata:\n  source: data.csv\n  target: income\ntracking_uri: {old_store}\n",
        encoding="utf-8",
    )
    project = Project.open(load_config(config), config_dir=machine, settings=Settings())
    archive = machine / "backups" / "store.tar.gz"
    create_backup(project, config_path=config, target=str(archive))
    kept = tmp_path_factory.mktemp("kept") / archive.name
    shutil.copyfile(archive, kept)
    expected = registry.load_pipeline(f"models:/{MODEL}@champion").predict(table[FEATURES])
    shutil.rmtree(artifacts)  # the old machine's disk is gone
    yield kept, registry, pd.DataFrame({"prediction": expected})


@pytest.fixture(scope="module")
def restored(
    stores: tuple[str, str],
    archived: tuple[Path, ModelRegistry, pd.DataFrame],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, ModelRegistry]:
    """The archive restored on a new machine: a new folder and the empty database."""
    _, new_store = stores
    into = tmp_path_factory.mktemp("new-machine") / "restored"
    restore_backup(str(archived[0]), into=into, tracking_uri=new_store)
    return into, ModelRegistry(new_store)


def test_restore_brings_back_versions_aliases_and_tags(
    archived: tuple[Path, ModelRegistry, pd.DataFrame], restored: tuple[Path, ModelRegistry]
) -> None:
    _, old, _ = archived
    _, new = restored
    assert [v.to_dict() for v in new.list_versions(MODEL)] == [
        v.to_dict() for v in old.list_versions(MODEL)
    ]


def test_restored_champion_loads_from_the_new_folder_and_predicts_the_same(
    archived: tuple[Path, ModelRegistry, pd.DataFrame], restored: tuple[Path, ModelRegistry]
) -> None:
    _, _, expected = archived
    _, new = restored
    pipeline = new.load_pipeline(f"models:/{MODEL}@champion")
    predicted = pipeline.predict(make_table()[FEATURES])
    assert predicted.tolist() == expected["prediction"].tolist()


def test_restored_experiment_points_at_the_restored_artifacts(
    stores: tuple[str, str], restored: tuple[Path, ModelRegistry]
) -> None:
    into, _ = restored
    _, new_store = stores
    restored_root = (into / ".conveyor" / "mlartifacts").as_uri()
    assert restored_root in artifact_locations(new_store)


def test_restore_refuses_a_database_that_holds_a_store(
    stores: tuple[str, str], archived: tuple[Path, ModelRegistry, pd.DataFrame], tmp_path: Path
) -> None:
    old_store, _ = stores
    archive, _, _ = archived
    into = tmp_path / "second"
    with pytest.raises(ConfigError, match="already holds an MLflow store"):
        restore_backup(str(archive), into=into, tracking_uri=old_store)
    assert not into.exists()
