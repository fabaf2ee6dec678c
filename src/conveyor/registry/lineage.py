"""Where a registered version came from, read back from its MLflow run.

The lineage record of a run: its info, params, metrics, ``conveyor.*`` tags, dataset
inputs and artifact files.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from conveyor.registry.dataset_inputs import dataset_inputs

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

__all__ = ["describe_run", "iso_time"]


def iso_time(ms: int | None) -> str:
    """An MLflow millisecond timestamp as ISO-8601 UTC ("" when unset)."""
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).replace(microsecond=0).isoformat()


def describe_run(client: MlflowClient, run: Run) -> dict[str, Any]:
    """A run's lineage record: run info, params, metrics, ``conveyor.*`` tags, data, files."""
    return {
        "run": {
            "run_id": run.info.run_id,
            "run_name": run.info.run_name,
            "status": run.info.status,
            "experiment_id": run.info.experiment_id,
            "started_at": iso_time(run.info.start_time),
            "ended_at": iso_time(run.info.end_time),
        },
        "params": dict(run.data.params),
        "metrics": {k: float(v) for k, v in run.data.metrics.items()},
        "lineage": {k: v for k, v in run.data.tags.items() if k.startswith("conveyor.")},
        "datasets": dataset_inputs(run),
        "artifacts": _artifact_paths(client, run.info.run_id, None),
    }


def _artifact_paths(client: MlflowClient, run_id: str, path: str | None) -> list[str]:
    paths: list[str] = []
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            paths.extend(_artifact_paths(client, run_id, item.path))
        else:
            paths.append(item.path)
    return sorted(paths)
