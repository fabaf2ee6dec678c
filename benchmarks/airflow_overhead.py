"""Orchestration overhead: ``conveyor_training`` under Airflow vs ``conveyor run``.

Two identical demo projects (same rows, same seed), each with empty caches, so the two
runners do the same work:

- fresh: ``conveyor run`` on one vs ``airflow dags test conveyor_training`` on the other;
- cached: the same two commands again (every step reused from the cache);
- per task: the Airflow task's wall time (from its ``[DAG TEST]`` start and end lines)
  minus the step's own seconds in the run record: CLI start-up plus Airflow's task cost.

Needs ``make airflow``. Usage: python -m benchmarks.airflow_overhead [--rows 3000] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.markers import write_between

ROOT = Path(__file__).resolve().parent.parent
CONVEYOR = str(Path(sys.executable).with_name("conveyor"))
AIRFLOW = ROOT / ".venv-airflow" / "bin" / "airflow"
RESULTS = ROOT / "benchmarks" / "results-airflow.json"
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- airflow:start -->", "<!-- airflow:end -->"
SECTION = "## Orchestration overhead"
DATE = "2026-01-01"
RUN_ID = "20260101T000000-conveyor_training"
GOAL_S = 2.0
_TASK_LINE = re.compile(r"^(\S+) .*\[DAG TEST\] (starting|end task) task_id=(\w+)")


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CONVEYOR_"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__USAGE_DATA_COLLECTION__ENABLED="False",
        SCARF_ANALYTICS="false",
        CONVEYOR_BIN=CONVEYOR,
    )
    return env


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} failed:\n{done.stdout[-3000:]}")
    return elapsed, done.stdout


def _task_walls(output: str) -> dict[str, float]:
    """Wall seconds of each task, from ``dags test``'s start and end lines."""
    started: dict[str, datetime] = {}
    walls: dict[str, float] = {}
    for line in output.splitlines():
        match = _TASK_LINE.match(line)
        if not match:
            continue
        stamp = datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))
        if match.group(2) == "starting":
            started[match.group(3)] = stamp
        else:
            walls[match.group(3)] = (stamp - started[match.group(3)]).total_seconds()
    return walls


def _step_seconds(project: Path, run_id: str) -> dict[str, float]:
    record = json.loads((project / ".conveyor" / "runs" / run_id / "record.json").read_text())
    return {name: float(step["seconds"]) for name, step in record["steps"].items()}


def _airflow_run(config: Path, project: Path, env: dict[str, str]) -> dict[str, Any]:
    argv = [str(AIRFLOW), "dags", "test", "conveyor_training", DATE]
    wall, output = _timed([*argv, "--conf", json.dumps({"config": str(config)})], env)
    walls, steps = _task_walls(output), _step_seconds(project, RUN_ID)
    overhead = {name: round(walls[name] - steps[name], 2) for name in steps}
    return {
        "wall_s": round(wall, 1),
        "tasks_s": round(sum(walls.values()), 1),
        "task_overhead_s": overhead,
        "median_task_overhead_s": round(statistics.median(overhead.values()), 2),
        "max_task_overhead_s": max(overhead.values()),
    }


def measure(rows: int) -> dict[str, Any]:
    """Run both runners fresh, then cached, on twin demo projects."""
    with tempfile.TemporaryDirectory(prefix="conveyor-airflow-bench-") as tmp:
        base = Path(tmp)
        env = _env(base / "airflow-home")
        _timed([str(AIRFLOW), "db", "migrate"], env)
        projects = {name: base / name for name in ("cli", "airflow")}
        for project in projects.values():
            _timed([CONVEYOR, "demo", "--dir", str(project), "--rows", str(rows)], env)
        cli_config = str(projects["cli"] / "conveyor.yaml")
        af_config = projects["airflow"] / "conveyor.yaml"
        result: dict[str, Any] = {"rows": rows}
        for phase in ("fresh", "cached"):
            cli_wall, _ = _timed([CONVEYOR, "run", "-c", cli_config], env)
            airflow = _airflow_run(af_config, projects["airflow"], env)
            result[phase] = {"conveyor_run_s": round(cli_wall, 1), "airflow": airflow}
        return result


def _steady(overhead: dict[str, float]) -> list[float]:
    """Per-task overheads without the first task's, which carries the one-time start."""
    return list(overhead.values())[1:]


def render(result: dict[str, Any]) -> str:
    """The Markdown between the markers."""
    lines = [
        f"Demo project, {result['rows']:,} rows; `airflow dags test` (no executor, SQLite "
        "metadata DB) vs `conveyor run`, twin projects with empty caches, then both again "
        "fully cached. Per-task overhead = Airflow task wall time minus the step's own "
        "seconds in the run record (CLI process start + Airflow's task bookkeeping). The "
        "first task also carries `dags test`'s one-time start of its in-process execution "
        "API, shown on its own.",
        "",
        "| phase | `conveyor run` | Airflow DAG run | first task's one-time start | "
        "per-task overhead, median / max (other 7 tasks) | goal |",
        "|---|---|---|---|---|---|",
    ]
    for phase in ("fresh", "cached"):
        r = result[phase]
        a = r["airflow"]
        steady = _steady(a["task_overhead_s"])
        first = next(iter(a["task_overhead_s"].values()))
        lines.append(
            f"| {phase} | {r['conveyor_run_s']:.1f} s | {a['wall_s']:.1f} s | {first:.1f} s"
            f" | {statistics.median(steady):.2f} s / {max(steady):.2f} s | <= {GOAL_S:.0f} s |"
        )
    per_task = result["fresh"]["airflow"]["task_overhead_s"]
    lines += ["", "Fresh run, overhead per task (s): " + ", ".join(
        f"{k} {v:.2f}" for k, v in per_task.items()
    )]  # fmt: skip
    return "\n".join(lines)


def write_doc(body: str) -> None:
    """Replace the section between the markers, adding it at the end if absent."""
    write_between(DOC, START, END, body, section=SECTION)


def main() -> None:
    """Measure, print, and record the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--render-only", action="store_true", help="Rewrite the doc from the saved results."
    )
    args = parser.parse_args()
    if args.render_only:
        write_doc(render(json.loads(RESULTS.read_text(encoding="utf-8"))))
        return
    if not AIRFLOW.is_file():
        raise SystemExit("no .venv-airflow: run `make airflow` first")
    result = measure(args.rows)
    result["measured_at"] = datetime.now().astimezone().isoformat(timespec="seconds")
    print(json.dumps(result, indent=2))
    if not args.no_write:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        write_doc(render(result))


if __name__ == "__main__":
    main()
