"""``conveyor reproduce``: rebuild a registered version from its lineage, as a dry run.

The version's lineage names the dataset version (DVC md5), the resolved config it was
trained with (``reports/lineage.json`` in its run, else the pipeline run record) and the
code version. The dataset is pulled from the DVC remote and split, train and evaluate
run again, in a temporary project: no step cache is reused, nothing is registered, no
alias moves, no pipeline metrics are published. The metrics are then compared.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from conveyor import __version__
from conveyor.config import ConveyorConfig, format_validation_error
from conveyor.data.versioning import DatasetVersioner, file_md5
from conveyor.errors import ConfigError, PipelineError
from conveyor.pipeline.context import RunContext
from conveyor.pipeline.project import Project
from conveyor.pipeline.release import LINEAGE_ARTIFACT, git_commit
from conveyor.pipeline.runner import PipelineRunner, StepEvent, code_version
from conveyor.pipeline.steps import Step, step_named
from conveyor.pipeline.store import RunStore

__all__ = ["MetricComparison", "Reproduction", "reproduce_version"]

log = logging.getLogger(__name__)

REBUILT_STEPS = ("split", "train", "evaluate")
_UNVERSIONED = ("", "None", "not versioned")


@dataclass(frozen=True)
class MetricComparison:
    """One metric, as registered and as reproduced."""

    metric: str
    registered: float | None
    reproduced: float | None
    tolerance: float

    @property
    def difference(self) -> float | None:
        """reproduced - registered (None when one side lacks the metric)."""
        if self.registered is None or self.reproduced is None:
            return None
        return self.reproduced - self.registered

    @property
    def matches(self) -> bool:
        """Both sides have it and they differ by at most the tolerance."""
        diff = self.difference
        return diff is not None and not math.isnan(diff) and abs(diff) <= self.tolerance


@dataclass(frozen=True)
class Reproduction:
    """The outcome of a rebuild.

    Attributes:
        name: the registered model.
        version: the version rebuilt.
        data_md5: the dataset version it was trained on.
        config_source: where the config snapshot came from.
        tolerance: largest absolute difference that still matches.
        rows: one comparison per metric.
        code_notes: how the code then and now compare.
    """

    name: str
    version: str
    data_md5: str
    config_source: str
    tolerance: float
    rows: list[MetricComparison]
    code_notes: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        """Every metric matches (and there is at least one)."""
        return bool(self.rows) and all(row.matches for row in self.rows)


@dataclass(frozen=True)
class _Snapshot:
    config: dict[str, Any]
    ingest: dict[str, Any]
    source: str


def reproduce_version(
    project: Project,
    name: str,
    version: str,
    *,
    tolerance: float = 1e-6,
    on_event: Any = None,
) -> Reproduction:
    """Rebuild a registered version from its lineage and compare its metrics.

    Args:
        project: the project whose store, DVC remote and run records hold the lineage.
        name: the registered model.
        version: the version to rebuild.
        tolerance: largest absolute difference of a metric that still matches.
        on_event: step progress of the temporary run.

    Returns:
        The comparison.

    Raises:
        PromotionError: unknown model or version.
        PipelineError: the version has no dataset version or no config snapshot.
        VersioningError: the dataset version cannot be pulled.
        ConveyorError: a rebuilt step failed.
    """
    from conveyor.registry.run_files import read_run_json
    from conveyor.registry.store import ModelRegistry

    registry = ModelRegistry(project.tracking_uri)
    info = registry.get_version(name, version)
    registered = registry.run_metrics(info.run_id)
    md5 = info.tags.get("conveyor.data_md5", "")
    if md5 in _UNVERSIONED:
        raise PipelineError(
            f"{name} v{version} was trained on an unversioned dataset "
            "(versioning.enabled was off): there is no dataset version to rebuild it from"
        )
    logged = read_run_json(registry, info.run_id, LINEAGE_ARTIFACT)
    snapshot = _snapshot(project, info.tags, logged, f"{name} v{version}")
    with tempfile.TemporaryDirectory(prefix="conveyor-reproduce-") as tmp:
        reproduced = _rebuild(project, snapshot, md5, Path(tmp), on_event=on_event)
    keys = sorted(set(registered) | set(reproduced))
    rows = [MetricComparison(k, registered.get(k), reproduced.get(k), tolerance) for k in keys]
    return Reproduction(
        name=name,
        version=str(info.version),
        data_md5=md5,
        config_source=snapshot.source,
        tolerance=tolerance,
        rows=rows,
        code_notes=_code_notes(project, info.tags),
    )


def _snapshot(project: Project, tags: dict[str, str], logged: Any, what: str) -> _Snapshot:
    """The resolved config and ingest summary the version was trained with."""
    if isinstance(logged, dict) and "config" in logged and "ingest" in logged:
        return _Snapshot(logged["config"], logged["ingest"], f"{LINEAGE_ARTIFACT} of its run")
    run_id = tags.get("conveyor.pipeline_run", "")
    record: dict[str, Any] = {}
    if run_id:
        try:
            record = RunStore(project.runs_dir, project.cache_dir).read_record(run_id)
        except PipelineError:
            record = {}
    ingest = record.get("steps", {}).get("ingest", {}).get("summary")
    if "config" not in record or not ingest:
        raise PipelineError(
            f"{what} has no config snapshot: its run logged no {LINEAGE_ARTIFACT} and the "
            f"pipeline run record {run_id or '(none)'} is missing or unfinished "
            f"under {project.runs_dir}"
        )
    return _Snapshot(record["config"], ingest, f"pipeline run record {run_id}")


def _rebuild(
    project: Project, snapshot: _Snapshot, md5: str, tmp: Path, *, on_event: Any
) -> dict[str, float]:
    """Split, train and evaluate again on the pulled dataset; the held-out metrics."""
    versioner = DatasetVersioner(project.root, remote=project.dvc_remote)
    pinned = versioner.pull(md5, dest=tmp / "dataset" / "data.parquet")
    try:
        config = ConveyorConfig.model_validate(snapshot.config)
    except ValidationError as exc:
        message = format_validation_error(exc, source="config snapshot")
        raise ConfigError(f"the config snapshot no longer validates:\n{message}") from exc
    config = config.model_copy(
        update={
            "data": config.data.model_copy(update={"source": str(pinned)}),
            "tracking_uri": None,
        }
    )
    workspace = Project(config=config, root=tmp / "project", settings=project.settings)
    steps = (_pinned_ingest(pinned, snapshot.ingest), *(step_named(n) for n in REBUILT_STEPS))
    runner = PipelineRunner(
        workspace, steps=steps, publish_metrics=False, on_event=on_event or _log_event
    )
    record = runner.run(force=True)
    metrics: dict[str, float] = record["steps"]["evaluate"]["summary"]["metrics"]
    return {k: float(v) for k, v in metrics.items()}


def _pinned_ingest(pinned: Path, summary: dict[str, Any]) -> Step:
    """An ingest step that yields the pulled dataset version as it was first ingested."""

    def execute(ctx: RunContext, out: Path) -> dict[str, Any]:
        shutil.copyfile(pinned, out / "data.parquet")
        return {**summary, "digest": file_md5(out / "data.parquet")}

    return Step("ingest", "Read the pinned dataset version", (), lambda ctx: None, execute)


def _log_event(event: StepEvent) -> None:
    if event.kind == "done":
        log.info("reproduce: %s done in %.1fs", event.step.name, event.seconds)


def _code_notes(project: Project, tags: dict[str, str]) -> list[str]:
    """The registered code version against this one (a difference may move metrics)."""
    then, now = tags.get("conveyor.code_version"), code_version()
    was = tags.get("conveyor.version", "unknown")
    notes = [
        f"registered with conveyor {was} (code {then or 'not recorded'}); "
        f"rebuilt with conveyor {__version__} (code {now})"
        + ("" if then in (None, now) else ": the code differs")
    ]
    commit, head = tags.get("conveyor.git_commit"), git_commit(project.root)
    if commit:
        notes.append(f"git commit {commit} then, {head or 'no git'} now")
    return notes
