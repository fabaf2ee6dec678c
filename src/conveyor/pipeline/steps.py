"""The training pipeline's steps: each wires domain functions to the run store.

A step is a ``Step``: its cache key says what its result depends on (config section,
upstream content, code); ``execute`` reads upstream outputs from the context, calls the
pure functions of ``data``, ``training`` and ``registry``, writes its outputs and returns
a small JSON summary for the run record. No step holds domain logic of its own.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.config import config_hash
from conveyor.data.versioning import file_md5
from conveyor.errors import DataError, DataValidationError
from conveyor.pipeline.context import RunContext, digest
from conveyor.pipeline.project import Project
from conveyor.pipeline.release import (
    export,
    export_key,
    prepare_register,
    promote,
    promote_key,
    register,
    register_key,
    warm_export,
)

__all__ = ["STEPS", "Step", "step_named"]

log = logging.getLogger(__name__)


KeyFn = Callable[[RunContext], list[Any] | None]
ExecuteFn = Callable[[RunContext, Path], dict[str, Any]]
PrepareFn = Callable[[RunContext], None]
WarmFn = Callable[[Project], None]


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
        warm: for a step run beside the others, the imports it needs, done ahead by the
            worker process that will run it while the steps before it run
            (``pipeline.side``); ``execute`` must not rely on it having run.
    """

    name: str
    title: str
    needs: tuple[str, ...]
    key_parts: KeyFn
    execute: ExecuteFn
    prepare: PrepareFn | None = None
    warm: WarmFn | None = None


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
def _warm_validate(project: Project) -> None:
    from conveyor.data.validation import load_great_expectations

    load_great_expectations()


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


STEPS: tuple[Step, ...] = (
    Step("ingest", "Read and clean the source table", (), _ingest_key, _ingest),
    Step(
        "validate",
        "Validate with Great Expectations",
        ("ingest",),
        _validate_key,
        _validate,
        warm=_warm_validate,
    ),
    Step("version", "Version the dataset with DVC", ("ingest",), _version_key, _version),
    Step("split", "Split train / held-out", ("ingest",), _split_key, _split),
    Step("train", "Train candidate models", ("split",), _train_key, _train),
    Step(
        "export",
        "Export to ONNX and profile the training data",
        ("train", "split"),
        export_key,
        export,
        warm=warm_export,
    ),
    Step("evaluate", "Evaluate on held-out data", ("train", "split"), _evaluate_key, _evaluate),
    Step(
        "register",
        "Track and register in MLflow",
        ("evaluate", "validate", "version", "export"),
        register_key,
        register,
        prepare_register,
    ),
    Step("promote", "Apply the promotion gate", ("register", "evaluate"), promote_key, promote),
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
