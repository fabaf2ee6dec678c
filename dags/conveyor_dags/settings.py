"""How the Conveyor DAGs find Conveyor and behave: Airflow Variables first, then defaults.

Every setting is an Airflow Variable, so it can be set in the UI, with
``airflow variables set``, or as ``AIRFLOW_VAR_<NAME>`` in the environment. Settings that
shape the DAG (schedule, executor, timeouts, retries) are read when the DAG file is
parsed; the others (the ``conveyor`` binary, the config path) when a task runs.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "DAGS_DIR",
    "STEPS",
    "allowed_config_roots",
    "allowed_sources",
    "outside_allowlist",
    "shown",
    "conveyor_bin",
    "conveyor_run_id",
    "default_args",
    "executor",
    "schedule",
    "setting",
    "step_timeout",
]

DAGS_DIR = Path(__file__).resolve().parent.parent
STEPS = (
    "ingest",
    "validate",
    "version",
    "split",
    "train",
    "export",
    "evaluate",
    "register",
    "promote",
)
OWNER = "conveyor"

# Generous ceilings: a task that hangs (a stuck connection, a dead NFS mount) must not
# hold a worker slot forever. Training may take long on real data; the rest is I/O.
_TIMEOUT_MINUTES = {"train": 180, "evaluate": 60, "register": 30, "promote": 30}
_DEFAULT_TIMEOUT_MINUTES = 30
_RUN_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def setting(name: str, default: str | None = None) -> str | None:
    """An Airflow Variable (or ``AIRFLOW_VAR_<NAME>``), else ``default``; empty means unset."""
    value = os.environ.get(f"AIRFLOW_VAR_{name.upper()}")
    if value is None:
        try:
            from airflow.sdk import Variable

            value = Variable.get(name, default=None)
        except Exception:  # no metadata DB or API reachable while parsing: use the default
            value = None
    return default if value in (None, "") else str(value)


def schedule(name: str, default: str | None) -> str | None:
    """A DAG schedule from Variable ``name``: a cron expression, a preset, or "none"."""
    value = setting(name, default)
    return None if value is None or value.strip().lower() in ("none", "null", "manual") else value


def executor() -> str:
    """Where step tasks run: "local" (the ``conveyor`` CLI here) or "kubernetes" (pods)."""
    value = (setting("conveyor_executor", "local") or "local").strip().lower()
    if value not in ("local", "kubernetes"):
        raise ValueError(f"Airflow Variable conveyor_executor: {value!r} is not local|kubernetes")
    return value


def step_timeout(step: str) -> timedelta:
    """``execution_timeout`` of a step's task (Variable ``conveyor_task_timeout_minutes``)."""
    override = setting("conveyor_task_timeout_minutes")
    minutes = float(override) if override else _TIMEOUT_MINUTES.get(step, _DEFAULT_TIMEOUT_MINUTES)
    return timedelta(minutes=minutes)


def default_args() -> dict[str, Any]:
    """Task defaults shared by the Conveyor DAGs: owner, retries with exponential backoff."""
    delay = float(setting("conveyor_retry_delay_seconds", "60") or 60)
    return {
        "owner": OWNER,
        "retries": int(setting("conveyor_retries", "3") or 3),
        "retry_delay": timedelta(seconds=delay),
        # Airflow 3.3 reads this as a multiplier: 60 s, 120 s, 240 s, ... capped below.
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=15),
    }


def conveyor_bin() -> str:
    """Path of the ``conveyor`` CLI of Conveyor's environment.

    Variable ``conveyor_bin``, else ``CONVEYOR_BIN``, else ``.venv/bin/conveyor`` of the
    repository holding this ``dags/`` folder, else ``conveyor`` on PATH.

    Raises:
        FileNotFoundError: none of them exists.
    """
    configured = setting("conveyor_bin") or os.environ.get("CONVEYOR_BIN")
    if configured:
        if _executable(configured):
            return configured
        raise FileNotFoundError(f"conveyor_bin / CONVEYOR_BIN: no executable at {configured}")
    beside = DAGS_DIR.parent / ".venv" / "bin" / "conveyor"
    if _executable(str(beside)):
        return str(beside)
    found = shutil.which("conveyor")
    if found:
        return found
    raise FileNotFoundError(
        f"no conveyor CLI at {beside} nor on PATH: set the Airflow Variable conveyor_bin "
        "(or CONVEYOR_BIN) to the conveyor of Conveyor's environment"
    )


def _executable(path: str) -> bool:
    return Path(path).is_file() and os.access(path, os.X_OK)


def conveyor_run_id(dag_run: Any) -> str:
    """The Conveyor run id of an Airflow DAG run: the same for every try and every clear.

    ``<logical date>-<dag id>`` (sorts with ``conveyor run``'s own ids), or, for runs
    without a logical date, ``<dag id>-<Airflow run id>``; unsafe characters become "-".
    """
    when = getattr(dag_run, "logical_date", None)
    if when is not None:
        raw = f"{when:%Y%m%dT%H%M%S}-{dag_run.dag_id}"
    else:
        raw = f"{dag_run.dag_id}-{dag_run.run_id}"
    return _RUN_ID_UNSAFE.sub("-", raw).strip("-.")[:128]


def _entries(name: str) -> list[str]:
    return [e.strip() for e in (setting(name) or "").split(",") if e.strip()]


def allowed_config_roots() -> list[str]:
    """Folders a DAG run's ``config`` param may point into (Variable
    ``conveyor_allowed_config_roots``, comma-separated; default: the folder of Variable
    ``conveyor_config`` and the repository holding this ``dags/`` folder)."""
    configured = _entries("conveyor_allowed_config_roots")
    if configured:
        return configured
    default = setting("conveyor_config")
    roots = [str(Path(default).resolve().parent)] if default else []
    return [*roots, str(DAGS_DIR.parent)]


def allowed_sources() -> list[str]:
    """Where a DAG run's ``source`` or ``data`` param may read (Variable
    ``conveyor_allowed_sources``, comma-separated folders and URL prefixes such as
    ``s3://lake/churn/`` or ``postgresql://db.internal:5432/crm``; default: local files
    under the allowed config roots, no URL)."""
    return _entries("conveyor_allowed_sources") or allowed_config_roots()


def outside_allowlist(value: str, allowed: list[str]) -> bool:
    """Whether a path or URL is outside every allowed folder or URL prefix.

    A local path is resolved first (``..`` and symlinks cannot leave a folder); a URL is
    compared by scheme, host, port and path prefix, never by its user or password.

    Example:
        >>> outside_allowlist("/srv/data/../etc/passwd", ["/srv/data"])
        True
        >>> outside_allowlist("s3://lake/churn/2026.csv", ["s3://lake/churn/"])
        False
        >>> outside_allowlist("s3://lake-evil/x.csv", ["s3://lake"])
        True
    """
    if "://" not in value:
        path = Path(value).resolve()
        roots = [Path(a).resolve() for a in allowed if "://" not in a]
        return not any(path == root or path.is_relative_to(root) for root in roots)
    return not any(_url_within(value, a) for a in allowed if "://" in a)


def _url_within(value: str, prefix: str) -> bool:
    try:
        url, allowed = urlsplit(value), urlsplit(prefix)
        same_place = (url.scheme.lower(), url.hostname, url.port) == (
            allowed.scheme.lower(),
            allowed.hostname,
            allowed.port,
        )
    except ValueError:  # a malformed port: not within anything
        return False
    base = allowed.path.rstrip("/")
    return same_place and (url.path == base or url.path.startswith(base + "/") or not base)


def shown(value: str) -> str:
    """A path or URL for messages: a URL without its user, password or query."""
    if "://" not in value:
        return value
    try:
        url = urlsplit(value)
        host = url.hostname or ""
        port = f":{url.port}" if url.port else ""
    except ValueError:
        return value.split("://", 1)[0] + "://..."
    return f"{url.scheme}://{host}{port}{url.path}"
