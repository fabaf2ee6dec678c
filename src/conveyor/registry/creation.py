"""Open an MLflow store whole or not at all.

Creating an MLflow store on SQLite or PostgreSQL runs its schema migrations, in many
committed steps. A process stopped in between leaves a half-migrated database that no
later run can open ("duplicate column name: step", "table datasets already exists"):

- a Ctrl-C is held until the store is open (:func:`uninterrupted`): the handler in place
  before (the runner's, which records the interruption) gets it afterwards;
- a new SQLite database is made under a temporary name and hard-linked into place,
  so even a killed process leaves nothing half built.

Migrating a new SQLite store takes about 2 s, most of a fresh run's registration.
The migrated tables (no experiment in them yet: the default experiment names the
project's artifact folder, so MLflow adds it when the copy is opened) are therefore kept
once per machine and MLflow version, in ``$XDG_CACHE_HOME/conveyor`` (``~/.cache``), and a
new store starts as a copy of them. Where that folder cannot be written, each new store
is migrated as before.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.errors import RegistryError
from conveyor.registry.outages import registry_error

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["open_client", "uninterrupted"]

logger = logging.getLogger(__name__)


def open_client(uri: str) -> MlflowClient:
    """An MLflow client on ``uri`` with its tracking and registry stores open (migrated).

    Raises:
        RegistryError: the store cannot be opened or created.
        KeyboardInterrupt: Ctrl-C arrived meanwhile (raised once the store is whole).
    """
    from mlflow import MlflowClient

    with uninterrupted():
        if uri.startswith("sqlite:///"):
            _create_sqlite_store(uri)
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        _open_stores(client)
    return client


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold SIGINT for the block (main thread only; elsewhere the block just runs).

    After the block, a SIGINT that arrived during it goes to the handler that was in place
    before: a Python handler is called (the runner's records the interruption and raises
    ``KeyboardInterrupt``), the default action raises ``KeyboardInterrupt``, an ignored
    SIGINT stays ignored.

    Raises:
        KeyboardInterrupt: as the previous handler decides.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if not received:
        return
    if callable(previous):  # the runner's handler (records, then raises) or Python's own
        previous(signal.SIGINT, None)
    elif previous != signal.SIG_IGN:
        raise KeyboardInterrupt


def _create_sqlite_store(uri: str) -> None:
    """Create a missing SQLite store whole or not at all.

    MLflow migrates a new database in many committed steps; a process killed in between
    leaves a database no later run can open ("table datasets already exists"). The
    database is therefore migrated under a temporary name and then hard-linked into place,
    which fails if another process got there first (its store is used then).
    """
    from mlflow import MlflowClient

    path_part, _, query = uri.removeprefix("sqlite:///").partition("?")
    db = Path(path_part)
    if db.exists():
        return
    _remove_abandoned(db)
    tmp = db.with_name(f".{db.name}.{os.getpid()}.creating")
    tmp.unlink(missing_ok=True)
    template = migrated_template()
    temp_uri = f"sqlite:///{tmp}" + (f"?{query}" if query else "")
    try:
        if template is not None:
            _copy(template, tmp, store=db)
        _open_stores(MlflowClient(tracking_uri=temp_uri, registry_uri=temp_uri))
        try:
            os.link(tmp, db)
        except FileExistsError:
            logger.info("store %s was created by another process meanwhile", db)
        except OSError as exc:
            raise RegistryError(f"cannot create the MLflow store {db}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _copy(template: Path, tmp: Path, *, store: Path) -> None:
    try:
        shutil.copyfile(template, tmp)
    except OSError as exc:  # a full disk: the caller removes what was written
        raise RegistryError(f"cannot create the MLflow store {store}: {exc}") from exc


def template_dir() -> Path:
    """Where migrated store templates are kept: ``$XDG_CACHE_HOME/conveyor`` or
    ``~/.cache/conveyor``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "conveyor"


def migrated_template() -> Path | None:
    """An SQLite database holding MLflow's migrated, empty tables, made once per MLflow
    version; None when it cannot be made here (the caller migrates the store itself)."""
    from importlib import metadata

    folder = template_dir()
    template = folder / f"mlflow-{metadata.version('mlflow')}-tables.db"
    if template.is_file():
        return template
    tmp = folder / f".{template.name}.{os.getpid()}.creating"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        _migrate_tables(tmp)
        with suppress(FileExistsError):  # another process made it meanwhile: the same tables
            os.link(tmp, template)
    except OSError as exc:
        logger.info("no store template in %s (%s): migrating the store in place", folder, exc)
        return None
    finally:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
    return template


def _migrate_tables(db: Path) -> None:
    """Run MLflow's own migrations on an empty database (tables only, no experiment)."""
    import sqlalchemy
    from mlflow.store.db.utils import _initialize_tables

    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    try:
        _initialize_tables(engine)  # type: ignore[no-untyped-call]
    finally:
        engine.dispose()


def _remove_abandoned(db: Path) -> None:
    """Temporary stores of processes that died while creating ``db``."""
    for leftover in db.parent.glob(f".{db.name}.*.creating"):
        pid = leftover.name.removeprefix(f".{db.name}.").removesuffix(".creating")
        if pid.isdigit() and not _alive(int(pid)):
            leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _open_stores(client: MlflowClient) -> None:
    """Create the client's tracking and registry stores now (running their migrations)."""
    from mlflow.exceptions import MlflowException

    try:
        _ = client._tracking_client.store
        _ = client._get_registry_client().store  # type: ignore[no-untyped-call]
    except AttributeError:  # another MLflow: its stores are created on first use instead
        logger.debug("MLflow client without the expected store accessors", exc_info=True)
    except (MlflowException, OSError) as exc:
        raise registry_error("cannot open the MLflow store", exc) from exc
