"""Run Conveyor's benchmarks and record them in docs/benchmarks.md.

Every number is compared with a baseline measured in the same run (ratios), because our
machines are shared and noisy:

- ``conveyor --help`` vs a bare ``python -c pass`` start;
- per-step fixed cost: the runner driving 6 trivial steps (as the ZenML/Kedro peers were
  measured), fresh and cached;
- pipeline overhead: ``conveyor run`` vs ``benchmarks/plain_script.py`` doing the same read,
  fit and evaluation, at each row count; plus the cached re-run and peak memory vs the
  size of the cleaned DataFrame.

Usage: python -m benchmarks.run [--rows 100000,1000000] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RESULTS = ROOT / "benchmarks" / "results.json"
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def timed(argv: list[str], *, cwd: Path | None = None) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (bytes, whole process tree) and stdout of a command."""
    import psutil

    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        parent = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                procs = [parent, *parent.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{out}\n{err}")
    return elapsed, peak, out


def bench_help(repeats: int = 7) -> dict[str, Any]:
    """Median start-up of ``conveyor --help`` vs the bare interpreter."""
    conveyor = [timed([str(BIN / "conveyor"), "--help"])[0] for _ in range(repeats)]
    python = [timed([sys.executable, "-c", "pass"])[0] for _ in range(repeats)]
    help_s, python_s = statistics.median(conveyor), statistics.median(python)
    return {"conveyor_help_s": help_s, "python_start_s": python_s, "ratio": help_s / python_s}


def bench_step_overhead(repeats: int = 5, n_steps: int = 6) -> dict[str, Any]:
    """Fixed cost per step of the runner: 6 trivial steps, fresh and cached."""
    from conveyor.config import ConveyorConfig
    from conveyor.pipeline.project import Project
    from conveyor.pipeline.runner import PipelineRunner
    from conveyor.pipeline.steps import Step
    from conveyor.settings import Settings

    def trivial(name: str) -> Step:
        return Step(name, name, (), lambda ctx: [name], lambda ctx, out: {"value": 1})

    steps = tuple(trivial(f"s{i}") for i in range(n_steps))
    config = ConveyorConfig.model_validate({"name": "b", "data": {"source": "x", "target": "y"}})
    fresh, cached = [], []
    with tempfile.TemporaryDirectory() as tmp:
        project = Project.open(config, config_dir=Path(tmp), settings=Settings())
        runner = PipelineRunner(project, steps=steps)
        for _ in range(repeats):
            started = time.perf_counter()
            runner.run(force=True)
            fresh.append((time.perf_counter() - started) / n_steps)
            started = time.perf_counter()
            runner.run()
            cached.append((time.perf_counter() - started) / n_steps)
    return {"per_step_s": statistics.median(fresh), "per_cached_step_s": statistics.median(cached)}


def bench_pipeline(rows: int) -> dict[str, Any]:
    """``conveyor run`` vs the plain script on the same data, plus cached re-run and memory."""
    import pandas as pd

    from conveyor.data.synthetic import write_demo_dataset

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        data = write_demo_dataset(project / "data.csv", n_rows=rows, seed=1, messy=False)
        (project / "conveyor.yaml").write_text(
            "name: bench\ndata: {source: data.csv, target: churned}\n"
        )
        plain_s, plain_rss, _ = timed(
            [sys.executable, "-m", "benchmarks.plain_script", str(data), "churned"], cwd=ROOT
        )
        conveyor = [str(BIN / "conveyor"), "run", "-c", str(project / "conveyor.yaml")]
        run_s, run_rss, _ = timed(conveyor, cwd=project)
        cached_s, _, cached_out = timed(conveyor, cwd=project)
        cleaned = next((project / ".conveyor" / "runs").glob("*/ingest/data.parquet"))
        frame_bytes = int(pd.read_parquet(cleaned).memory_usage(deep=True).sum())
        record = json.loads((cleaned.parent.parent / "record.json").read_text())
        steps = {name: entry["seconds"] for name, entry in record["steps"].items()}
    return {
        "rows": rows,
        "plain_script_s": plain_s,
        "conveyor_run_s": run_s,
        "ratio": run_s / plain_s,
        "cached_rerun_s": cached_s,
        "cached_steps": cached_out.count("cached"),
        "peak_rss_mb": run_rss / 2**20,
        "plain_peak_rss_mb": plain_rss / 2**20,
        "dataframe_mb": frame_bytes / 2**20,
        "peak_rss_over_dataframe": run_rss / frame_bytes,
        "step_seconds": steps,
    }


def render(results: dict[str, Any]) -> str:
    """Markdown tables of one benchmark run."""
    h, s = results["help"], results["steps"]
    lines = [
        f"Measured {results['date']} on {results['machine']}.",
        "",
        "| measure | Conveyor | baseline (same run) | ratio | goal |",
        "|---|---|---|---|---|",
        f"| `conveyor --help` | {h['conveyor_help_s']:.3f} s"
        f" | `python -c pass` {h['python_start_s']:.3f} s | {h['ratio']:.1f}x | <= 0.5 s |",
        f"| fixed cost per step (6 trivial steps) | {s['per_step_s'] * 1000:.1f} ms"
        " | - | - | <= 50 ms |",
        f"| fixed cost per cached step | {s['per_cached_step_s'] * 1000:.1f} ms | - | - | - |",
    ]
    for p in results["pipeline"]:
        lines.append(
            f"| `conveyor run`, {p['rows']:,} rows | {p['conveyor_run_s']:.1f} s"
            f" | plain script {p['plain_script_s']:.1f} s | {p['ratio']:.2f}x | <= 1.3x |"
        )
        lines.append(
            f"| cached re-run, {p['rows']:,} rows ({p['cached_steps']} steps cached)"
            f" | {p['cached_rerun_s']:.2f} s | - | - | <= 3 s |"
        )
        lines.append(
            f"| peak memory, {p['rows']:,} rows | {p['peak_rss_mb']:.0f} MB"
            f" | plain script {p['plain_peak_rss_mb']:.0f} MB; DataFrame {p['dataframe_mb']:.0f} MB"
            f" | {p['peak_rss_over_dataframe']:.1f}x the DataFrame | - |"
        )
    lines += ["", "Where the time of a fresh `conveyor run` goes (seconds per step):", ""]
    names = list(results["pipeline"][0]["step_seconds"])
    lines += ["| rows | " + " | ".join(names) + " | process start, exit, summary |"]
    lines += ["|---" * (len(names) + 2) + "|"]
    for p in results["pipeline"]:
        steps = p["step_seconds"]
        rest = p["conveyor_run_s"] - sum(steps.values())
        cells = " | ".join(f"{steps[n]:.1f}" for n in names)
        lines.append(f"| {p['rows']:,} | {cells} | {rest:.1f} |")
    return "\n".join(lines)


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,1000000", help="Comma-separated row counts.")
    parser.add_argument("--no-write", action="store_true", help="Print only.")
    args = parser.parse_args()
    import platform

    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}",
        "help": bench_help(),
        "steps": bench_step_overhead(),
        "pipeline": [bench_pipeline(int(n)) for n in args.rows.split(",")],
    }
    table = render(results)
    print(table)
    if args.no_write:
        return
    RESULTS.write_text(json.dumps(results, indent=2))
    doc = DOC.read_text()
    head, _, rest = doc.partition(START)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{START}\n{table}\n{END}{tail}")


if __name__ == "__main__":
    main()
