"""One round of ``conveyor run`` against the plain script on the same table.

A round runs, as separate processes on the same CSV: the plain script
(``benchmarks/plain_script.py``), a fresh ``conveyor run`` in a new project, and a second
``conveyor run`` with nothing changed (every step cached). Which of the first two goes
first alternates with the round, so neither always meets a warmer page cache. Both fit
the same preprocessing and LightGBM estimator with the same params (2 estimator threads,
as the default model sets); nothing else in either is tuned.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import publish
from benchmarks.process import BIN, ROOT, timed

TARGET = "churned"
MB = 2**20


def write_table(folder: Path, rows: int) -> Path:
    """The demo table as a clean CSV (the plain script does no cleaning)."""
    from conveyor.data.synthetic import write_demo_dataset

    print(f"writing {rows:,} demo rows", file=sys.stderr, flush=True)
    return write_demo_dataset(folder / f"data-{rows}.csv", n_rows=rows, seed=1, messy=False)


def measure_round(data: Path, project: Path, *, conveyor_first: bool) -> dict[str, Any]:
    """Wall seconds, peak RSS and step seconds of one round in a new project folder."""
    project.mkdir(parents=True)
    config = project / "conveyor.yaml"
    config.write_text(f"name: bench\ndata: {{source: {data}, target: {TARGET}}}\n")
    plain_cmd = [sys.executable, "-m", "benchmarks.plain_script", str(data), TARGET]
    conveyor_cmd = [str(BIN / "conveyor"), "run", "-c", str(config)]
    measured: dict[str, tuple[float, int, str]] = {}
    for name in ("conveyor", "plain") if conveyor_first else ("plain", "conveyor"):
        cmd, cwd = (conveyor_cmd, project) if name == "conveyor" else (plain_cmd, ROOT)
        measured[name] = timed(cmd, cwd=cwd)
    fresh = _only_record(project)
    cached_s, _, _ = timed(conveyor_cmd, cwd=project)
    cached = next(r for r in _records(project) if r["run_id"] != fresh["run_id"])
    return {
        "order": "conveyor, plain" if conveyor_first else "plain, conveyor",
        "plain_s": measured["plain"][0],
        "plain_rss_mb": measured["plain"][1] / MB,
        "conveyor_s": measured["conveyor"][0],
        "conveyor_rss_mb": measured["conveyor"][1] / MB,
        "step_seconds": {name: s["seconds"] for name, s in fresh["steps"].items()},
        "cached_s": cached_s,
        "cached_steps": sum(1 for s in cached["steps"].values() if s["status"] == "cached"),
        "steps": len(cached["steps"]),
    }


def dataframe_mb(data: Path) -> float:
    """In-memory size of the table as pandas holds it."""
    import pandas as pd

    return float(pd.read_csv(data, engine="pyarrow").memory_usage(deep=True).sum()) / MB


def measure(rows: list[int], rounds: int, folder: Path) -> dict[str, Any]:
    """``rounds`` interleaved rounds over every row count; the raw numbers of each."""
    tables = {n: write_table(folder, n) for n in rows}
    result: dict[str, Any] = {
        "rows": rows,
        "rounds": rounds,
        "settings": {
            "estimator": "LightGBM, default params of the binary task, n_jobs=2 in both",
            "data": "demo churn table, clean CSV (seed 1)",
            "order": "plain script and conveyor run alternate which goes first each round",
            "mlflow_store": "fresh SQLite store per project, from the machine's table template",
        },
        "dataframe_mb": {str(n): dataframe_mb(t) for n, t in tables.items()},
        "raw": {str(n): [] for n in rows},
    }
    for r in range(rounds):
        for n in rows:
            started = time.perf_counter()
            one = measure_round(tables[n], folder / f"r{r}-{n}", conveyor_first=r % 2 == 1)
            result["raw"][str(n)].append(one)
            print(
                f"round {r + 1}/{rounds}, {n:,} rows: plain {one['plain_s']:.1f} s,"
                f" conveyor {one['conveyor_s']:.1f} s, cached {one['cached_s']:.2f} s"
                f" ({time.perf_counter() - started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    return result


def per_round(raw: list[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in raw]


def ratios(raw: list[dict[str, Any]], top: str, bottom: str) -> list[float]:
    """``top / bottom`` within each round (like against like)."""
    return [float(r[top]) / float(r[bottom]) for r in raw]


def differences(raw: list[dict[str, Any]], top: str, bottom: str) -> list[float]:
    return [float(r[top]) - float(r[bottom]) for r in raw]


def step_medians(raw: list[dict[str, Any]]) -> dict[str, float]:
    """Median seconds of each step over the rounds, then of the whole run (wall time)."""
    names = list(raw[0]["step_seconds"])
    medians = {n: statistics.median(r["step_seconds"][n] for r in raw) for n in names}
    medians["whole run"] = statistics.median(r["conveyor_s"] for r in raw)
    return medians


def _records(project: Path) -> list[dict[str, Any]]:
    runs = project / ".conveyor" / "runs"
    return [json.loads(p.read_text()) for p in sorted(runs.glob("*/record.json"))]


def _only_record(project: Path) -> dict[str, Any]:
    records = _records(project)
    if len(records) != 1:
        raise RuntimeError(f"expected one run record in {project}, found {len(records)}")
    return records[0]


def beside_note() -> str:
    """Which steps run beside which others, for the step tables' caption."""
    from conveyor.pipeline.side import (
        BESIDE_MAX_CELLS,
        SIDE_STEPS,
        WAITS_ON_LARGE_TABLE,
        WARM_DURING,
    )
    from conveyor.pipeline.steps import STEPS

    names = [s.name for s in STEPS]
    model = [n for n in names if n in ("split", "train", "evaluate")]
    first_waiting = min(names.index(n) for n in WAITS_ON_LARGE_TABLE)
    early = [n for n in names[:first_waiting] if n in SIDE_STEPS]
    late = [n for n in names[first_waiting:] if n in SIDE_STEPS]
    before = [n for n in model if names.index(n) < first_waiting]
    after = [n for n in model if names.index(n) > names.index(late[0])] if late else []
    late_note = (
        f", and {publish.listed(late)} beside {publish.listed(after)} in a fresh worker"
        if late
        else ""
    )
    return (
        f"{publish.listed(early)} run in a worker beside {publish.listed(model)}"
        + (f", and {publish.listed(late)} beside {publish.listed(after)}" if late else "")
        + f", on a table of at most {BESIDE_MAX_CELLS:,} cells (rows x columns); on a larger"
        f" one {publish.listed(early)} run beside {publish.listed(before)} only (training"
        f" starts once they are done and the worker has stopped){late_note}. So the steps"
        " add up to more than the run; reading a local file, the worker imports Great"
        " Expectations while ingest reads the table, which validate's time leaves out;"
        + "".join(
            f" it imports {side}'s libraries while {step} runs, which {side}'s time leaves out;"
            for step, side in WARM_DURING.items()
        )
        + " register's time includes the imports it does while it waits for"
        f" {publish.listed([*early, *late])}"
    )
