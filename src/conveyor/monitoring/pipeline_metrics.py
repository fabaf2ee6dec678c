"""Pipeline run metrics: a finished run record as Prometheus gauges (textfile and push).

Each finished ``conveyor run`` (success or failure) is summarised as the gauges named in
``METRICS.md`` ("Pipeline") and published two ways, both optional and neither able to
fail the run:

* a textfile for node-exporter's textfile collector, written by rename so the collector
  never reads half a file (``CONVEYOR_METRICS_TEXTFILE``; default
  ``<project>/.conveyor/metrics/conveyor_pipeline.prom``; ``off`` disables it; a folder
  gets ``conveyor_pipeline_<name>.prom`` so several projects can share it);
* a push to a Pushgateway-compatible URL (``CONVEYOR_PUSHGATEWAY_URL``), job
  ``conveyor_pipeline``, grouping key ``pipeline=<name>``, replacing the previous push.

The values describe the last run only: a gauge the run did not reach (say, model metrics
of a run that failed validation) is absent rather than stale.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from conveyor.settings import Settings, get_settings

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = [
    "PUSH_JOB",
    "PipelineMetrics",
    "pipeline_metrics",
    "publish_pipeline_metrics",
    "render_registry",
    "textfile_path",
]

log = logging.getLogger(__name__)

PUSH_JOB = "conveyor_pipeline"
PUSH_TIMEOUT_SECONDS = 5.0
FINISHED = ("succeeded", "failed", "interrupted")
_DISABLED = ("", "off", "none", "false", "0")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class PipelineMetrics:
    """The pipeline gauges of one finished run (``None`` / empty: the run did not get there).

    Attributes:
        pipeline: the project's config name (the ``pipeline`` label).
        last_run_timestamp_seconds: when the run finished (Unix seconds).
        last_run_success: 1 if the run succeeded, else 0.
        step_duration_seconds: seconds per step that finished (cached: the lookup time).
        step_cached: 1 per step reused from the cache, 0 per step that ran.
        data_rows: rows ingested.
        validation_passed: 1 passed (or skipped by config), 0 failed, None not reached.
        model_metric: held-out metrics of the trained model.
        registered_version: the model version registered (or found) by the run.
        promoted: 1 if the run's model is the champion now, else 0.
        gate_passed: 1 if the run's model passed the promotion gate, 0 if it failed it
            (the champion stays), None if the run did not reach the gate.
    """

    pipeline: str
    last_run_timestamp_seconds: float
    last_run_success: int
    step_duration_seconds: dict[str, float] = field(default_factory=dict)
    step_cached: dict[str, int] = field(default_factory=dict)
    data_rows: int | None = None
    validation_passed: int | None = None
    model_metric: dict[str, float] = field(default_factory=dict)
    registered_version: int | None = None
    promoted: int = 0
    gate_passed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (the run record's ``metrics.values``)."""
        return {
            "last_run_timestamp_seconds": self.last_run_timestamp_seconds,
            "last_run_success": self.last_run_success,
            "step_duration_seconds": dict(self.step_duration_seconds),
            "step_cached": dict(self.step_cached),
            "data_rows": self.data_rows,
            "validation_passed": self.validation_passed,
            "model_metric": dict(self.model_metric),
            "registered_version": self.registered_version,
            "promoted": self.promoted,
            "gate_passed": self.gate_passed,
        }


def _summary(record: dict[str, Any], step: str) -> dict[str, Any] | None:
    entry = record.get("steps", {}).get(step) or {}
    if entry.get("status") not in ("succeeded", "cached"):
        return None
    summary = entry.get("summary")
    return summary if isinstance(summary, dict) else None


def _timestamp(record: dict[str, Any]) -> float:
    stamp = record.get("finished_at") or record.get("started_at")
    try:
        return datetime.fromisoformat(str(stamp)).timestamp()
    except ValueError:
        return time.time()


def _validation(record: dict[str, Any]) -> int | None:
    summary = _summary(record, "validate")
    if summary is not None:
        return 1 if summary.get("success") else 0
    if "validation_failures" in record:
        return 0
    return None


def _numbers(values: Any) -> dict[str, float]:
    if not isinstance(values, dict):
        return {}
    return {
        str(k): float(v)
        for k, v in values.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _version(summary: dict[str, Any] | None) -> int | None:
    version = str((summary or {}).get("version"))
    return int(version) if version.isdigit() else None


def pipeline_metrics(record: dict[str, Any]) -> PipelineMetrics:
    """Summarise a finished run record as pipeline gauges.

    Args:
        record: the run record (``.conveyor/runs/<id>/record.json`` as a dict).

    Returns:
        The gauges of that run.
    """
    steps = record.get("steps", {})
    finished = {n: s for n, s in steps.items() if s.get("status") in ("succeeded", "cached")}
    ingest = _summary(record, "ingest")
    evaluate = _summary(record, "evaluate")
    promote = _summary(record, "promote")
    return PipelineMetrics(
        pipeline=str(record.get("project", "unknown")),
        last_run_timestamp_seconds=_timestamp(record),
        last_run_success=1 if record.get("status") == "succeeded" else 0,
        step_duration_seconds={n: float(s.get("seconds", 0.0)) for n, s in finished.items()},
        step_cached={n: int(s["status"] == "cached") for n, s in finished.items()},
        data_rows=int(ingest["rows"]) if ingest and "rows" in ingest else None,
        validation_passed=_validation(record),
        model_metric=_numbers((evaluate or {}).get("metrics")),
        registered_version=_version(_summary(record, "register")),
        promoted=int(bool(promote and promote.get("alias") == "champion")),
        gate_passed=None if promote is None else int(bool(promote.get("passed"))),
    )


def render_registry(metrics: PipelineMetrics) -> CollectorRegistry:
    """The gauges on a registry of their own (nothing global is touched).

    Args:
        metrics: the values of one run.

    Returns:
        A ``CollectorRegistry`` holding the ``conveyor_pipeline_*`` gauges.
    """
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry(auto_describe=True)
    name = metrics.pipeline

    def gauge(metric: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(f"conveyor_pipeline_{metric}", doc, ("pipeline", *labels), registry=registry)

    gauge("last_run_timestamp_seconds", "When the last run finished (Unix time).").labels(name).set(
        metrics.last_run_timestamp_seconds
    )
    gauge("last_run_success", "1 if the last run succeeded, else 0.").labels(name).set(
        metrics.last_run_success
    )
    duration = gauge("step_duration_seconds", "Seconds per step in the last run.", ("step",))
    for step, seconds in metrics.step_duration_seconds.items():
        duration.labels(name, step).set(seconds)
    cached = gauge("step_cached", "1 if the step was reused from the cache.", ("step",))
    for step, flag in metrics.step_cached.items():
        cached.labels(name, step).set(flag)
    _optional(gauge("data_rows", "Rows ingested by the last run."), name, metrics.data_rows)
    _optional(
        gauge("validation_passed", "1 if the last run's data passed validation, else 0."),
        name,
        metrics.validation_passed,
    )
    scores = gauge("model_metric", "Held-out metrics of the last trained model.", ("metric",))
    for metric, value in metrics.model_metric.items():
        scores.labels(name, metric).set(value)
    _optional(
        gauge("registered_version", "Model version registered by the last run."),
        name,
        metrics.registered_version,
    )
    gauge("promoted", "1 if the last run's model became (or is) the champion.").labels(name).set(
        metrics.promoted
    )
    _optional(
        gauge("gate_passed", "1 if the last run's model passed the promotion gate, else 0."),
        name,
        metrics.gate_passed,
    )
    return registry


def _optional(gauge: Any, pipeline: str, value: float | None) -> None:
    """Set a gauge's one series, or leave the gauge without series when not reached."""
    if value is not None:
        gauge.labels(pipeline).set(value)


def textfile_path(
    state_dir: Path, pipeline: str, *, settings: Settings | None = None
) -> Path | None:
    """Where the textfile goes: ``CONVEYOR_METRICS_TEXTFILE`` (file or folder) or the default.

    Args:
        state_dir: the project's ``.conveyor/`` folder.
        pipeline: the project's config name (names the file inside a folder).
        settings: where to read it (default: the process's settings).

    Returns:
        The ``.prom`` path, or ``None`` when the textfile is turned off.
    """
    value = (settings or get_settings()).metrics_textfile
    if value is None:
        return state_dir / "metrics" / "conveyor_pipeline.prom"
    if value.strip().lower() in _DISABLED:
        return None
    path = Path(value).expanduser()
    if value.endswith(("/", os.sep)) or path.is_dir():
        return path / f"conveyor_pipeline_{_UNSAFE.sub('_', pipeline)}.prom"
    return path


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _write_textfile(path: Path, registry: CollectorRegistry) -> dict[str, Any]:
    from prometheus_client import write_to_textfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), registry)  # temp file + rename, as node-exporter needs
    except OSError as exc:
        log.warning("pipeline metrics: cannot write textfile %s: %s", path, exc)
        return {"path": str(path), "ok": False, "error": str(exc)}
    return {"path": str(path), "ok": True}


def _push(url: str, pipeline: str, registry: CollectorRegistry) -> dict[str, Any]:
    from prometheus_client import push_to_gateway

    try:
        push_to_gateway(
            url,
            job=PUSH_JOB,
            registry=registry,
            grouping_key={"pipeline": pipeline},
            timeout=PUSH_TIMEOUT_SECONDS,
        )
    except Exception as exc:  # any failure of the push is a warning, never a failed run
        log.warning("pipeline metrics: push to %s failed: %s", _redact(url), exc)
        return {"url": _redact(url), "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"url": _redact(url), "ok": True}


def publish_pipeline_metrics(
    record: dict[str, Any], *, state_dir: Path, settings: Settings | None = None
) -> dict[str, Any] | None:
    """Publish a finished run's gauges (textfile and/or push); return the record's section.

    Never raises: a failed write or push is logged as a warning and noted in the result.

    Args:
        record: the run record, finished (``succeeded``, ``failed`` or ``interrupted``).
        state_dir: the project's ``.conveyor/`` folder (default textfile location).
        settings: where to write and push (default: the process's settings).

    Returns:
        ``{"values": ..., "textfile": ..., "push": ...}`` for the run record's ``metrics``
        section, or ``None`` when the run has not finished (a single ``--step`` run).
    """
    if record.get("status") not in FINISHED:
        return None
    settings = settings or get_settings()
    try:
        metrics = pipeline_metrics(record)
        registry = render_registry(metrics)
    except Exception as exc:  # a malformed record must not turn a run into a failure
        log.warning("pipeline metrics: cannot summarise run %s: %s", record.get("run_id"), exc)
        return {"error": f"{type(exc).__name__}: {exc}"}
    section: dict[str, Any] = {"values": metrics.to_dict(), "textfile": None, "push": None}
    path = textfile_path(state_dir, metrics.pipeline, settings=settings)
    if path is not None:
        section["textfile"] = _write_textfile(path, registry)
    if settings.pushgateway_url:
        section["push"] = _push(settings.pushgateway_url, metrics.pipeline, registry)
    return section
