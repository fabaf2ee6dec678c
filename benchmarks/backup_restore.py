"""Backup and restore times (RPO/RTO inputs) on a project with 50 registered versions.

The project is the demo (``conveyor demo``) trained once by ``conveyor run`` (dataset in
DVC, GX suite, run record, version 1); the other versions are small models logged and
registered straight through the registry adapter (a full run each would only add
training time, not store or artifact content of another kind). Then, for ``--rounds``
rounds: ``conveyor backup`` to a new archive, ``conveyor restore`` into a new folder,
each timed as a whole command (start-up included, as a user or a cron job sees it).

Usage: python -m benchmarks.backup_restore [--versions 50] [--rounds 3] [--rows 20000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.markers import write_between
from benchmarks.process import BIN, ROOT, timed
from benchmarks.provenance import run_meta

RESULTS = ROOT / "benchmarks" / "results-backup.json"
DOC = ROOT / "docs" / "operations.md"
START, END = "<!-- backup:start -->", "<!-- backup:end -->"
NAME = "churn-demo"


def build_project(folder: Path, *, rows: int, versions: int) -> dict[str, Any]:
    """The demo project trained once, then registered up to ``versions`` versions."""
    project = folder / "demo"
    config = project / "conveyor.yaml"
    timed([str(BIN / "conveyor"), "demo", "--dir", str(project), "--rows", str(rows)])
    started = time.perf_counter()
    timed([str(BIN / "conveyor"), "run", "-c", str(config)])
    run_s = time.perf_counter() - started
    started = time.perf_counter()
    _register_more(project, versions - 1)
    register_s = time.perf_counter() - started
    state = project / ".conveyor"
    return {
        "config": config,
        "rows": rows,
        "versions": versions,
        "pipeline_run_s": round(run_s, 1),
        "register_s": round(register_s, 1),
        "store_mb": round((state / "mlflow.db").stat().st_size / 1e6, 2),
        "artifacts_mb": round(_size(state / "mlartifacts") / 1e6, 2),
        "dvc_remote_mb": round(_size(state / "dvc-remote") / 1e6, 2),
    }


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _register_more(project: Path, count: int) -> None:
    """``count`` more versions of the demo model, each a small LightGBM pipeline."""
    import lightgbm
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from conveyor.registry.store import ModelRegistry

    registry = ModelRegistry(f"sqlite:///{project / '.conveyor' / 'mlflow.db'}")
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "age": rng.normal(40, 12, 400),
            "plan": pd.Series(rng.choice(["basic", "plus", "pro"], 400), dtype="str"),
        }
    )
    table["churned"] = np.where(table["age"] > 45, "yes", "no")
    report = project / "bench-report.json"
    report.write_text('{"bench": true}', encoding="utf-8")
    pre = ColumnTransformer(
        [("num", "passthrough", ["age"]), ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"])]
    )
    for index in range(count):
        model = lightgbm.LGBMClassifier(n_estimators=20 + index, verbose=-1)
        pipeline = Pipeline([("pre", pre), ("model", model)])
        pipeline.fit(table[["age", "plan"]], table["churned"])
        run_id = registry.log_training_run(
            experiment=NAME,
            run_name=f"bench-{index}",
            params={"model": "lightgbm", "n_estimators": 20 + index},
            metrics={"roc_auc": 0.8 + index / 1000},
            artifacts=[report],
            pipeline=pipeline,
            input_example=table[["age", "plan"]].head(5),
            dataset=table,
            dataset_name=NAME,
            dataset_source="synthetic",
            dataset_digest=f"bench-{index}",
            target="churned",
            tags={"conveyor.pipeline_run": f"bench-{index}"},
        )
        version = registry.register(name=NAME, run_id=run_id, key=f"bench-{index}", tags={})
        if index % 10 == 9:
            registry.promote(NAME, version.version)
    report.unlink()


def measure(rows: int, versions: int, rounds: int) -> dict[str, Any]:
    """Build the project, then time backup and restore ``rounds`` times."""
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-backup-") as tmp:
        folder = Path(tmp)
        project = build_project(folder, rows=rows, versions=versions)
        config = project.pop("config")
        results = []
        for index in range(rounds):
            archive = folder / "backups" / f"round-{index}.tar.gz"
            backup_s, backup_rss, _ = timed(
                [str(BIN / "conveyor"), "backup", "-c", str(config), "--to", str(archive)]
            )
            into = folder / f"restored-{index}"
            restore_s, restore_rss, out = timed(
                [str(BIN / "conveyor"), "restore", "--from", str(archive), "--into", str(into)]
            )
            assert f"{versions} versions" in " ".join(out.split()), out
            results.append(
                {
                    "backup_s": backup_s,
                    "restore_s": restore_s,
                    "archive_mb": archive.stat().st_size / 1e6,
                    "backup_peak_rss_mb": backup_rss / 1e6,
                    "restore_peak_rss_mb": restore_rss / 1e6,
                }
            )
            print(json.dumps(results[-1]))
    return {"project": project, "rounds": results}


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Median, min and max of every measure over the rounds."""
    rounds = result["rounds"]

    def stats(key: str) -> dict[str, float]:
        values = [r[key] for r in rounds]
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    return {key: stats(key) for key in rounds[0]}


def render(result: dict[str, Any]) -> str:
    """The Markdown between the markers in docs/operations.md."""
    s, meta, project = result["summary"], result["meta"], result["project"]

    def spread(key: str, fmt: str = "{:.1f}") -> str:
        v = s[key]
        return f"{fmt.format(v['median'])} ({fmt.format(v['min'])}-{fmt.format(v['max'])})"

    return "\n".join(
        [
            f"Measured in `benchmarks/results-backup.json` ({meta['date'][:10]}, "
            f"{meta['machine'].split(',')[0]}, commit {meta['commit'][:10]}, "
            f"{len(result['rounds'])} rounds, median (min-max)) on the demo project with "
            f"{project['versions']} registered versions: store {project['store_mb']} MB, "
            f"artifacts {project['artifacts_mb']} MB, DVC remote {project['dvc_remote_mb']} MB.",
            "",
            "| measure | value |",
            "|---|---|",
            f"| `conveyor backup` (whole command), s | {spread('backup_s')} |",
            f"| `conveyor restore` (whole command, checksums verified), s | "
            f"{spread('restore_s')} |",
            f"| archive size, MB | {spread('archive_mb')} |",
        ]
    )


def main() -> None:
    """Measure, print, and record the results (and the table in docs/operations.md)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args()
    if args.render_only:
        write_between(DOC, START, END, render(json.loads(RESULTS.read_text(encoding="utf-8"))))
        return
    meta = run_meta()
    started = time.perf_counter()
    result = measure(args.rows, args.versions, args.rounds)
    result["summary"] = summarize(result)
    result["meta"] = {**meta, "seconds": round(time.perf_counter() - started)}
    print(json.dumps(result["summary"], indent=2))
    if not args.no_write:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        write_between(DOC, START, END, render(result))


if __name__ == "__main__":
    main()
