"""The steps that release a trained model: export, register and promote.

``export`` builds what registration stores beside the model and needs no registry: the
ONNX graph, checked against the pipeline on held-out rows, and the drift reference
profile. ``register`` tracks the run and registers a version in MLflow, keyed by the hash
of its inputs; ``promote`` applies the promotion gate. Like every step they only wire
the domain functions of ``registry``, ``monitoring`` and ``training`` to the run store.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

from conveyor import __version__
from conveyor.config import config_hash
from conveyor.errors import ConveyorError, ServiceUnavailableError
from conveyor.pipeline.context import RunContext
from conveyor.pipeline.interrupts import check_interrupted
from conveyor.pipeline.project import Project
from conveyor.redaction import redact, redact_tree

__all__ = [
    "IMPORTANCE_PLOT",
    "LINEAGE_ARTIFACT",
    "export",
    "export_key",
    "git_commit",
    "prepare_register",
    "promote",
    "promote_key",
    "register",
    "register_key",
    "warm_export",
]

log = logging.getLogger(__name__)

IMPORTANCE_PLOT = "feature_importance.png"
LINEAGE_ARTIFACT = "reports/lineage.json"
"""The run artifact holding what a rebuild needs: resolved config, ingest summary, code."""

# -- export -------------------------------------------------------------------
ONNX_EXPORT = "onnx"
ONNX_GRAPH = "model.onnx"
REFERENCE_PROFILE = "profile"


def export_key(ctx: RunContext) -> list[Any]:
    """The export depends on the model, the split it was trained and checked on, and the
    ONNX settings."""
    return [ctx.keys["train"], ctx.keys["split"], config_hash(ctx.config.serving.onnx)]


def warm_export(project: Project) -> None:
    """Import what the export runs on: the model's libraries (to load it), the profile's
    and, with ONNX on, the converter and the runtime."""
    import joblib  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    from conveyor.monitoring import profile  # noqa: F401
    from conveyor.training.models import import_model_libraries

    import_model_libraries(project.config.training.models)
    if project.config.serving.onnx.enabled:
        from conveyor.registry.onnx_export import load_converter

        load_converter()


def export(ctx: RunContext, out: Path) -> dict[str, Any]:
    """The model's serving artifacts beside the model itself: its ONNX graph, checked
    against the pipeline on held-out rows, and the drift reference (the training rows'
    and the predictions' distributions). Neither writes to the registry."""
    from conveyor.monitoring.profile import profile_model

    model, schema = ctx.model("train", "model"), ctx.schema
    profile = profile_model(model, ctx.frame("split", "train"), schema, task=ctx.task)
    ctx.store.save_json(out, REFERENCE_PROFILE, profile.to_dict())
    summary: dict[str, Any] = {"profile_rows": profile.rows}
    if ctx.config.serving.onnx.enabled:
        from conveyor.registry.onnx_export import export_onnx

        settings = ctx.config.serving.onnx
        onnx = export_onnx(
            model,
            ctx.frame("split", "test")[list(schema.features)],
            tolerance=settings.tolerance,
            parity_rows=settings.parity_rows,
        )
        log.log(
            logging.INFO if onnx.verified else logging.WARNING,
            "ONNX export %s (max diff %s, %.1fs)%s",
            onnx.status,
            "n/a" if onnx.max_abs_diff is None else f"{onnx.max_abs_diff:.3g}",
            onnx.export_seconds,
            f": {onnx.reason}" if onnx.reason else "",
        )
        if onnx.model is not None:
            ctx.store.save_bytes(out, ONNX_GRAPH, onnx.model)
        ctx.store.save_json(out, ONNX_EXPORT, onnx.to_dict())
        summary["onnx"] = onnx.to_dict()
    return summary


def _onnx_export(ctx: RunContext) -> Any:
    """The export step's ``OnnxExport``; None when ONNX export is off."""
    if "onnx" not in ctx.summary("export"):
        return None
    from conveyor.registry.onnx_export import OnnxExport

    folder = ctx.output("export")
    graph = folder / ONNX_GRAPH
    model = ctx.store.load_bytes(folder, ONNX_GRAPH) if graph.is_file() else None
    return OnnxExport.from_dict(ctx.store.load_json(folder, ONNX_EXPORT), model=model)


# -- register -----------------------------------------------------------------
def register_key(ctx: RunContext) -> list[Any]:
    """A registration depends on the evaluated and exported model, the data's checks and
    the registry."""
    # Upstream *results*, not keys: a validation reused under a new baseline key is the
    # same validation, and must not make a new model version.
    return [
        ctx.keys["evaluate"],
        ctx.keys["export"],
        ctx.summary("validate"),
        ctx.summary("version").get("md5"),
        ctx.project.config.name,
        ctx.project.tracking_uri,
        ctx.config.registry.model_dump(),
    ]


def git_commit(root: Path) -> str | None:
    """The git commit checked out in ``root``, or None outside git."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _lineage_tags(ctx: RunContext, champion: str | None) -> dict[str, str]:
    from conveyor.pipeline.runner import code_version

    version = ctx.summary("version")
    validation = ctx.summary("validate")
    tags = {
        "conveyor.version": __version__,
        "conveyor.pipeline_run": ctx.run_id,
        "conveyor.task": ctx.task,
        "conveyor.config_hash": config_hash(ctx.config),
        "conveyor.data_md5": str(version.get("md5")),
        "conveyor.dvc_remote": str(version.get("remote", "not versioned")),
        "conveyor.dvc_path": str(version.get("path", "not versioned")),
        "conveyor.validation": (
            "skipped" if validation.get("skipped") else f"passed ({validation['evaluated']} checks)"
        ),
        "conveyor.parent_champion": champion or "none",
        "conveyor.model_type": ctx.summary("train")["model"],
        "conveyor.code_version": code_version(),
    }
    commit = git_commit(ctx.project.root)
    if commit:
        tags["conveyor.git_commit"] = commit
    return {key: redact(value) for key, value in tags.items()}  # a remote may hold a password


def prepare_register(ctx: RunContext) -> None:
    """Import what registration uses and list the installed packages (the model's pinned
    requirements), while the steps before it finish beside the run."""
    from conveyor.registry.serialization import import_skops, pin_requirements_ready
    from conveyor.registry.tracking import import_mlflow

    import_skops()
    pin_requirements_ready()
    import_mlflow()


def register(ctx: RunContext, out: Path) -> dict[str, Any]:
    """Track the run (params, metrics, plots, model, dataset, ONNX graph, reference
    profile, report) and register it as a version; an earlier version under the same key
    is returned instead."""
    from conveyor.registry.store import ModelRegistry

    name = ctx.project.config.name
    key = ctx.keys["register"]
    registry = ModelRegistry(ctx.project.tracking_uri)
    existing = registry.find_version(name, key=key)
    if existing is None:
        champion = registry.get_alias(name, "champion")
        tags = _lineage_tags(ctx, champion.version if champion else None)
        run_id = _log_run(ctx, registry, tags, lineage=_write_lineage(ctx, tags, out))
        _log_reference_profile(ctx, registry, run_id)
        _log_model_report(ctx, registry, run_id, champion=champion, tags=tags, out=out)
        check_interrupted()  # last moment to stop without a registered version
        existing = registry.register(name=name, run_id=run_id, key=key, tags=tags)
    summary = {
        "name": name,
        **existing.to_dict(),
        "model_uri": f"models:/{name}/{existing.version}",
    }
    ctx.store.save_json(out, "registration", summary)
    return summary


def _write_lineage(ctx: RunContext, tags: dict[str, str], out: Path) -> Path:
    """What ``conveyor reproduce`` needs to rebuild the version, kept with its run."""
    lineage = {
        "config": ctx.config.model_dump(mode="json"),
        "ingest": ctx.summary("ingest"),
        "data_md5": tags["conveyor.data_md5"],
        "code_version": tags["conveyor.code_version"],
        "conveyor_version": __version__,
    }
    return ctx.store.save_json(out, Path(LINEAGE_ARTIFACT).stem, redact_tree(lineage))


def _log_run(ctx: RunContext, registry: Any, tags: dict[str, str], *, lineage: Path) -> str:
    evaluation = ctx.summary("evaluate")
    schema = ctx.schema
    artifacts = sorted((ctx.output("evaluate") / "plots").glob("*.png"))
    artifacts += [ctx.output("ingest") / "cleaning.json", lineage]
    validation_report = ctx.summary("validate").get("report")
    if validation_report:
        artifacts.append(Path(validation_report))
    params = {
        "model": ctx.summary("train")["model"],
        **{f"model.{k}": v for k, v in ctx.summary("train")["params"].items()},
        "task": ctx.task,
        "split.strategy": ctx.config.split.strategy,
        "split.test_size": ctx.config.split.test_size,
        "metric": ctx.config.training.metric,
        "train_rows": ctx.summary("split")["train_rows"],
        "test_rows": evaluation["rows"],
    }
    onnx = _onnx_export(ctx)
    if onnx is not None:
        from conveyor.registry.tracking import onnx_tags

        tags.update(onnx_tags(onnx))  # the caller registers the version with these tags
    run_id: str = registry.log_training_run(
        experiment=ctx.project.config.name,
        run_name=f"conveyor-{ctx.run_id}",
        params=params,
        metrics=evaluation["metrics"],
        artifacts=artifacts,
        pipeline=ctx.model("train", "model"),
        input_example=ctx.frame("ingest", "raw_sample")[list(schema.features)],
        dataset=ctx.frame("ingest", "data"),
        dataset_name=ctx.project.config.name,
        dataset_source=ctx.project.config.data.source,
        dataset_digest=ctx.summary("ingest")["digest"],
        target=schema.target,
        tags=tags,
        onnx=onnx,
        allow_pickle=ctx.config.registry.allow_pickle,
        trusted_types=tuple(ctx.config.registry.trusted_types),
    )
    return run_id


def _log_reference_profile(ctx: RunContext, registry: Any, run_id: str) -> None:
    """Store the training data's drift reference (features and predictions) with the run."""
    from conveyor.registry.profiles import log_reference_profile

    profile = ctx.store.load_json(ctx.output("export"), REFERENCE_PROFILE)
    log_reference_profile(registry, run_id, profile)


def _log_model_report(
    ctx: RunContext, registry: Any, run_id: str, *, champion: Any, tags: dict[str, str], out: Path
) -> None:
    """Write the HTML model report and log it with the run (before the version exists)."""
    from datetime import UTC, datetime

    from conveyor.pipeline.model_report import ModelReport, write_model_report
    from conveyor.training.importance import PermutationImportance

    evaluation, plots = ctx.summary("evaluate"), ctx.output("evaluate") / "plots"
    importance = ctx.store.load_json(ctx.output("evaluate"), "importance")
    report = ModelReport(
        name=ctx.project.config.name,
        pipeline_run=ctx.run_id,
        model_type=ctx.summary("train")["model"],
        task=ctx.task,
        metric=ctx.config.training.metric or "",
        metrics=evaluation["metrics"],
        champion_metrics=_champion_metrics(ctx, registry, champion),
        champion_version=champion.version if champion else None,
        heldout_rows=evaluation["rows"],
        plots=[plots / n for n in evaluation["plots"] if n != IMPORTANCE_PLOT],
        ingest=ctx.summary("ingest"),
        validation=ctx.summary("validate"),
        tags={**tags, "conveyor.run_id": run_id},
        importance=PermutationImportance.from_dict(importance),
        importance_plot=plots / IMPORTANCE_PLOT if IMPORTANCE_PLOT in evaluation["plots"] else None,
        generated_at=datetime.now(UTC).replace(microsecond=0).isoformat(),
    )
    registry.log_report(run_id, write_model_report(report, out / "model_report.html"))


def _champion_metrics(ctx: RunContext, registry: Any, champion: Any) -> dict[str, float] | None:
    """The champion's held-out metrics for the report: None without one, {} if it failed."""
    if champion is None:
        return None
    try:
        return _score_champion(ctx, registry, champion.version)
    except ServiceUnavailableError:  # the registry did not answer: the run fails, retryable
        raise
    except ConveyorError as exc:  # the report says so; the promote step decides what it means
        log.warning("champion v%s could not be loaded for the report: %s", champion.version, exc)
        return {}


# -- promote ------------------------------------------------------------------
def promote_key(ctx: RunContext) -> list[Any]:
    """A promotion depends on the registered version and the gate's config."""
    return [ctx.keys["register"], config_hash(ctx.config.promotion)]


def promote(ctx: RunContext, out: Path) -> dict[str, Any]:
    """Score the champion on this run's held-out rows, apply the gate, move the alias."""
    from conveyor.registry.guard import apply_gate_decision
    from conveyor.registry.promotion import evaluate_gate
    from conveyor.registry.store import ModelRegistry
    from conveyor.training.evaluate import metric_directions

    name, version = ctx.project.config.name, ctx.summary("register")["version"]
    metric = ctx.config.training.metric or ""
    challenger = ctx.summary("evaluate")["metrics"]
    registry = ModelRegistry(ctx.project.tracking_uri)
    champion = registry.get_alias(name, "champion")
    if champion is not None and champion.version == version:
        summary = {"passed": True, "alias": "champion", "reasons": ["already the champion"]}
        return {**summary, "champion_metrics": challenger, "previous_champion": None}
    champion_metrics = _score_champion(ctx, registry, champion.version) if champion else None
    decision = evaluate_gate(
        metric=metric,
        challenger=challenger,
        champion=champion_metrics,
        config=ctx.config.promotion,
        directions=metric_directions(),
    )
    promote = decision.passed and ctx.config.promotion.auto_promote
    reason = "; ".join(decision.reasons) if not decision.passed else "auto_promote off"
    check_interrupted()  # last moment to stop before an alias moves
    apply_gate_decision(
        registry,
        name,
        version,
        gated_against=champion.version if champion else None,
        promote=promote,
        reason=reason,
    )
    alias = "champion" if promote else "challenger"
    summary = {
        **decision.to_dict(),
        "alias": alias,
        "champion_metrics": champion_metrics,
        "previous_champion": champion.version if champion else None,
    }
    ctx.store.save_json(out, "promotion", summary)
    return summary


def _score_champion(ctx: RunContext, registry: Any, version: str) -> dict[str, float] | None:
    """The champion's metrics on this run's held-out set (same data as the challenger)."""
    from conveyor.training.evaluate import evaluate_model

    pipeline = registry.load_pipeline(f"models:/{ctx.project.config.name}/{version}")
    try:
        evaluation = evaluate_model(
            pipeline, ctx.frame("split", "test"), schema=ctx.schema, task=ctx.task
        )
    except Exception as exc:  # the champion may predate a schema change
        log.warning("champion v%s could not score this held-out set: %s", version, exc)
        return {}
    return evaluation.metrics
