"""The training pipeline's steps: each wires domain functions to the run store.

A step is a ``Step``: its cache key says what its result depends on (config section,
upstream content, code); ``execute`` reads upstream outputs from the context, calls the
pure functions of ``data``, ``training`` and ``registry``, writes its outputs and returns
a small JSON summary for the run record. No step holds domain logic of its own.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor import __version__
from conveyor.config import config_hash
from conveyor.data.versioning import file_md5
from conveyor.errors import ConveyorError, DataError, DataValidationError, ServiceUnavailableError
from conveyor.pipeline.context import RunContext, digest
from conveyor.pipeline.interrupts import check_interrupted
from conveyor.redaction import redact, redact_tree

__all__ = ["LINEAGE_ARTIFACT", "STEPS", "Step", "git_commit", "step_named"]

log = logging.getLogger(__name__)

IMPORTANCE_PLOT = "feature_importance.png"
LINEAGE_ARTIFACT = "reports/lineage.json"
"""The run artifact holding what a rebuild needs: resolved config, ingest summary, code."""

KeyFn = Callable[[RunContext], list[Any] | None]
ExecuteFn = Callable[[RunContext, Path], dict[str, Any]]
PrepareFn = Callable[[RunContext], None]


@dataclass(frozen=True)
class Step:
    """One named stage of the pipeline.

    Attributes:
        name: step name, used on the CLI (``--step``) and in the run record.
        title: what the step does, for progress output.
        needs: steps whose outputs it reads.
        key_parts: what the result depends on; ``None`` means never reuse from cache.
        execute: does the work, writes outputs into the folder, returns the summary.
        prepare: work that needs none of its upstream steps (imports, mostly), run while
            the step waits for upstream steps still running beside it; ``execute`` must
            not rely on it having run.
    """

    name: str
    title: str
    needs: tuple[str, ...]
    key_parts: KeyFn
    execute: ExecuteFn
    prepare: PrepareFn | None = None


# -- ingest -------------------------------------------------------------------
def _ingest_key(ctx: RunContext) -> list[Any] | None:
    from conveyor.data.sources import source_fingerprint

    fingerprint = source_fingerprint(ctx.project.config.data)
    if fingerprint is None:
        return None
    return [fingerprint, config_hash(ctx.project.config.data), ctx.project.config.training.task]


def _ingest(ctx: RunContext, out: Path) -> dict[str, Any]:
    from conveyor.data.cleaning import clean_table, raw_sample
    from conveyor.data.schema import infer_task
    from conveyor.data.sources import read_table

    data_config = ctx.project.config.data
    raw = read_table(data_config)
    frame, schema, report = clean_table(raw, data_config)
    task = infer_task(frame[schema.target])
    forced = ctx.project.config.training.task
    if forced == "regression" and task != "regression":
        import pandas as pd

        if not pd.api.types.is_numeric_dtype(frame[schema.target]):
            raise DataError(
                f"training.task is 'regression' but target {schema.target!r} is not numeric"
            )
    path = ctx.store.save_frame(out, "data", frame)
    ctx.store.save_frame(out, "raw_sample", raw_sample(raw, strip=data_config.strip_whitespace))
    ctx.memo["ingest/data"] = frame
    ctx.store.save_json(out, "cleaning", report.to_dict())
    return {
        "digest": file_md5(path),
        "rows": len(frame),
        "columns": len(frame.columns),
        "task": task if forced == "auto" else forced,
        "schema": schema.to_dict(),
        "cleaning": report.to_dict(),
    }


# -- validate -----------------------------------------------------------------
def _baseline_digest(ctx: RunContext) -> str:
    path = ctx.project.baseline_path
    return file_md5(path) if path.is_file() else "absent"


def _validate_key(ctx: RunContext) -> list[Any]:
    cfg = ctx.project.config.validation
    return [ctx.summary("ingest")["digest"], config_hash(cfg), _baseline_digest(ctx)]


def _validate(ctx: RunContext, out: Path) -> dict[str, Any]:
    cfg = ctx.project.config.validation
    if not cfg.enabled:
        return {"success": True, "skipped": True, "evaluated": 0}
    from conveyor.data.validation import validate_batch

    report = validate_batch(
        ctx.frame("ingest", "data"),
        ctx.schema,
        cfg,
        baseline_path=ctx.project.baseline_path,
        report_dir=out,
    )
    ctx.store.save_json(out, "validation", report.to_dict())
    if not report.success:
        lines = [f.line() for f in report.failures]
        raise DataValidationError(
            f"data validation failed: {len(lines)} of {report.evaluated} expectations",
            failures=lines,
            report_path=report.report_path,
        )
    return {
        "success": True,
        "evaluated": report.evaluated,
        "baseline_created": report.baseline_created,
        "baseline": report.baseline_path,
        "report": report.report_path,
        # When this run created the baseline, the same data is also valid under the new one.
        "extra_keys": [[*_validate_key(ctx)[:2], _baseline_digest(ctx)]],
    }


# -- version ------------------------------------------------------------------
def _version_key(ctx: RunContext) -> list[Any]:
    cfg = ctx.project.config.versioning
    return [ctx.summary("ingest")["digest"], cfg.enabled, ctx.project.dvc_remote]


def _version(ctx: RunContext, out: Path) -> dict[str, Any]:
    data_digest = ctx.summary("ingest")["digest"]
    if not ctx.project.config.versioning.enabled:
        return {"skipped": True, "md5": data_digest}
    from conveyor.data.versioning import DatasetVersioner

    target = ctx.project.dataset_path
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".parquet.tmp")
    shutil.copyfile(ctx.output("ingest") / "data.parquet", tmp)
    tmp.replace(target)
    version = DatasetVersioner(ctx.project.root, remote=ctx.project.dvc_remote).track(target)
    ctx.store.save_json(out, "version", version.to_dict())
    return {"skipped": False, **version.to_dict()}


# -- split --------------------------------------------------------------------
def _split_key(ctx: RunContext) -> list[Any]:
    return [ctx.summary("ingest")["digest"], config_hash(ctx.config.split), ctx.task]


def _split(ctx: RunContext, out: Path) -> dict[str, Any]:
    from conveyor.data.split import split_frame

    train, test = split_frame(
        ctx.frame("ingest", "data"),
        target=ctx.schema.target,
        task=ctx.task,
        config=ctx.config.split,
    )
    ctx.store.save_frame(out, "train", train)
    ctx.store.save_frame(out, "test", test)
    ctx.memo["split/train"], ctx.memo["split/test"] = train, test
    return {"train_rows": len(train), "test_rows": len(test), "strategy": ctx.config.split.strategy}


# -- train --------------------------------------------------------------------
def _train_key(ctx: RunContext) -> list[Any]:
    data = ctx.project.config.data
    return [
        ctx.keys["split"],
        config_hash(ctx.config.training),
        ctx.summary("ingest")["schema"],
        [sorted(data.na_values), data.strip_whitespace],
        ctx.summary("ingest")["cleaning"].get("renamed_columns", {}),
    ]


def _train(ctx: RunContext, out: Path) -> dict[str, Any]:
    from conveyor.data.cleaning import value_cleaner
    from conveyor.training.train import train_model

    training = ctx.config.training
    data = ctx.project.config.data
    cleaner = value_cleaner(
        ctx.schema,
        na_values=data.na_values,
        strip=data.strip_whitespace,
        renamed=ctx.summary("ingest")["cleaning"].get("renamed_columns"),
    )
    result = train_model(
        ctx.frame("split", "train"),
        schema=ctx.schema,
        task=ctx.task,
        models=training.models,
        metric=training.metric or "",
        seed=training.seed,
        cleaner=cleaner,
    )
    ctx.store.save_model(out, "model", result.pipeline)
    ctx.memo["train/model"] = result.pipeline
    return {
        "model": result.model,
        "params": result.params,
        "fit_seconds": round(result.fit_seconds, 3),
        "candidates": [
            {"model": c.model, "score": c.score, "fit_seconds": round(c.fit_seconds, 3)}
            for c in result.candidates
        ],
        "label_classes": list(result.label_classes) if result.label_classes else None,
    }


# -- evaluate -----------------------------------------------------------------
def _evaluate_key(ctx: RunContext) -> list[Any]:
    return [ctx.keys["train"]]


def _evaluate(ctx: RunContext, out: Path) -> dict[str, Any]:
    from conveyor.training.held_out import evaluate_held_out

    model, test = ctx.model("train", "model"), ctx.frame("split", "test")
    report = evaluate_held_out(
        model,
        test,
        schema=ctx.schema,
        task=ctx.task,
        metric=ctx.config.training.metric,
        plots_dir=out / "plots",
    )
    evaluation, importance, plots = report.evaluation, report.importance, report.plots
    ctx.store.save_json(out, "evaluation", evaluation.to_dict())
    ctx.store.save_json(out, "importance", importance.to_dict())
    return {
        "metrics": evaluation.metrics,
        "rows": evaluation.rows,
        "plots": [p.name for p in plots],
        "importance": {"method": importance.method, "seconds": round(importance.seconds, 3)},
    }


# -- export -------------------------------------------------------------------
ONNX_EXPORT = "onnx"
ONNX_GRAPH = "model.onnx"
REFERENCE_PROFILE = "profile"


def _export_key(ctx: RunContext) -> list[Any]:
    return [ctx.keys["train"], ctx.keys["split"], config_hash(ctx.config.serving.onnx)]


def _export(ctx: RunContext, out: Path) -> dict[str, Any]:
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
def _register_key(ctx: RunContext) -> list[Any]:
    # Upstream *results*, not keys: a validation reused under a new baseline key is the
    # same validation, and must not make a new model version.
    return [
        ctx.keys["evaluate"],
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


def _prepare_register(ctx: RunContext) -> None:
    """Import what registration uses and list the installed packages (the model's pinned
    requirements), while the steps before it finish beside the run."""
    from conveyor.registry.serialization import import_skops, pin_requirements_ready
    from conveyor.registry.tracking import import_mlflow

    import_skops()
    pin_requirements_ready()
    import_mlflow()


def _register(ctx: RunContext, out: Path) -> dict[str, Any]:
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
def _promote_key(ctx: RunContext) -> list[Any]:
    return [ctx.keys["register"], config_hash(ctx.config.promotion)]


def _promote(ctx: RunContext, out: Path) -> dict[str, Any]:
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


STEPS: tuple[Step, ...] = (
    Step("ingest", "Read and clean the source table", (), _ingest_key, _ingest),
    Step("validate", "Validate with Great Expectations", ("ingest",), _validate_key, _validate),
    Step("version", "Version the dataset with DVC", ("ingest",), _version_key, _version),
    Step("split", "Split train / held-out", ("ingest",), _split_key, _split),
    Step("train", "Train candidate models", ("split",), _train_key, _train),
    Step(
        "export",
        "Export to ONNX and profile the training data",
        ("train", "split"),
        _export_key,
        _export,
    ),
    Step("evaluate", "Evaluate on held-out data", ("train", "split"), _evaluate_key, _evaluate),
    Step(
        "register",
        "Track and register in MLflow",
        ("evaluate", "validate", "version", "export"),
        _register_key,
        _register,
        _prepare_register,
    ),
    Step("promote", "Apply the promotion gate", ("register", "evaluate"), _promote_key, _promote),
)


def step_named(name: str) -> Step:
    """Look a step up by name.

    Raises:
        PipelineError: unknown step.
    """
    from conveyor.errors import PipelineError

    for step in STEPS:
        if step.name == name:
            return step
    raise PipelineError(f"unknown step {name!r}; steps: {', '.join(s.name for s in STEPS)}")


def cache_key(step: Step, parts: list[Any], code_version: str) -> str:
    """The key a step's outputs are indexed under."""
    return digest(step.name, code_version, parts)
