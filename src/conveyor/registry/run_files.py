"""Small files a run keeps with its artifacts (lineage snapshots), read back as JSON."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from conveyor.errors import RegistryError
from conveyor.registry.tracking import first_line

if TYPE_CHECKING:
    from conveyor.registry.store import ModelRegistry

__all__ = ["read_run_json"]


def read_run_json(registry: ModelRegistry, run_id: str, path: str) -> Any | None:
    """A JSON artifact of a run, or None when the run did not log it.

    Args:
        registry: the store the run is in.
        run_id: the MLflow run.
        path: the artifact's path in the run (``reports/lineage.json``).

    Returns:
        The parsed JSON, or None.

    Raises:
        RegistryError: the run or its artifacts cannot be read, or the file is not JSON.
    """
    from mlflow.exceptions import MlflowException

    folder = PurePosixPath(path).parent.as_posix()
    try:
        listed = {a.path for a in registry.client.list_artifacts(run_id, folder)}
        if path not in listed:
            return None
        with tempfile.TemporaryDirectory(prefix="conveyor-run-file-") as tmp:
            local = registry.client.download_artifacts(run_id, path, tmp)
            return json.loads(Path(local).read_text(encoding="utf-8"))
    except (MlflowException, OSError) as exc:
        raise RegistryError(f"reading {path} of run {run_id}: {first_line(exc)}") from exc
    except ValueError as exc:
        raise RegistryError(f"{path} of run {run_id} is not JSON: {exc}") from exc
