"""Orchestration overhead: ``conveyor_training`` under Airflow vs ``conveyor run``.

    python -m benchmarks.airflow_overhead [--rows 3000] [--rounds 3] [--no-write] [--render-only]

Each round makes two identical demo projects (same rows, same seed), each with empty
caches, so the two runners do the same work, and runs, alternating which runner goes
first from one round to the next:

- fresh: ``conveyor run`` on one vs ``airflow dags test conveyor_training`` on the other;
- cached: the same two commands again (every step reused from the cache);
- per task: the Airflow task's wall time (from its ``[DAG TEST]`` start and end lines)
  minus the step's own seconds in the run record: CLI start-up plus Airflow's task cost.
  The first task also carries ``dags test``'s one-time start; it is reported on its own,
  and the goal (at most 2 s per task) is read on the other tasks, in every round.

Needs ``make airflow``. Results: ``benchmarks/results-airflow.json``; the table goes into
docs/benchmarks.md and docs/airflow.md. At the defaults one round takes about 3 minutes on
an idle 2-core machine, more under load.
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

from benchmarks import publish

ROOT = Path(__file__).resolve().parent.parent
CONVEYOR = str(Path(sys.executable).with_name("conveyor"))
AIRFLOW = ROOT / ".venv-airflow" / "bin" / "airflow"
RESULTS = ROOT / "benchmarks" / "results-airflow.json"
DOCS = (ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "airflow.md")
START, END = "<!-- airflow:start -->", "<!-- airflow:end -->"
SECTION = "## Orchestration overhead"
DATE = "2026-01-01"
RUN_ID = "20260101T000000-conveyor_training"
SEED = 0
GOAL_S = 2.0
RUNNERS = ("conveyor", "airflow")
PHASES = ("fresh", "cached")
_TASK_LINE = re.compile(r"^(\S+) .*\[DAG TEST\] (starting|end task) task_id=(\w+)")


def _env(base: Path) -> dict[str, str]:
    """Airflow's home, and the DAG's config allowlist, inside the benchmark's folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CONVEYOR_"))}
    env.update(
        AIRFLOW_HOME=str(base / "airflow-home"),
        AIRFLOW_VAR_CONVEYOR_ALLOWED_CONFIG_ROOTS=str(base),
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
        raise RuntimeError(f"{' '.join(argv[:4])} failed:\n{done.stdout[-3000:]}")
    return elapsed, done.stdout


def _version(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return (done.stdout.split() or ["unknown"])[-1]


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


def _record(project: Path, run_id: str | None = None) -> dict[str, Any]:
    """A run's record: ``run_id``'s, or the latest (run ids start with their time)."""
    runs = project / ".conveyor" / "runs"
    folder = runs / run_id if run_id else max(runs.iterdir(), key=lambda p: p.name)
    record: dict[str, Any] = json.loads((folder / "record.json").read_text(encoding="utf-8"))
    return record


def _check_phase(record: dict[str, Any], phase: str, runner: str) -> None:
    """A cached phase whose steps ran again (sources edited meanwhile) compares nothing."""
    expected = "cached" if phase == "cached" else "succeeded"
    off = [name for name, step in record["steps"].items() if step["status"] != expected]
    if off:
        raise RuntimeError(
            f"{phase} {runner} run: steps {', '.join(off)} were not {expected}; were "
            "Conveyor's sources or libraries changed during the benchmark?"
        )


def _steady(overhead: dict[str, float]) -> list[float]:
    """Per-task overheads without the first task's, which carries the one-time start."""
    return list(overhead.values())[1:]


def _airflow_run(project: Path, env: dict[str, str]) -> dict[str, Any]:
    conf = json.dumps({"config": str(project / "conveyor.yaml")})
    argv = [str(AIRFLOW), "dags", "test", "conveyor_training", DATE, "--conf", conf]
    wall, output = _timed(argv, env)
    record = _record(project, RUN_ID)
    walls = _task_walls(output)
    steps = {name: float(step["seconds"]) for name, step in record["steps"].items()}
    overhead = {name: round(walls[name] - steps[name], 2) for name in steps}
    steady = _steady(overhead)
    return {
        "wall_s": round(wall, 1),
        "outside_tasks_s": round(wall - sum(walls.values()), 1),
        "task_overhead_s": overhead,
        "first_task_overhead_s": next(iter(overhead.values())),
        "steady_median_s": round(statistics.median(steady), 2),
        "steady_max_s": max(steady),
    }


def _conveyor_run(project: Path, env: dict[str, str]) -> dict[str, Any]:
    wall, _ = _timed([CONVEYOR, "run", "-c", str(project / "conveyor.yaml")], env)
    return {"wall_s": round(wall, 1)}


def one_round(
    folder: Path, rows: int, order: tuple[str, ...], env: dict[str, str]
) -> dict[str, Any]:
    """Twin fresh projects; both runners fresh, then both cached, in ``order``."""
    projects = {runner: folder / runner for runner in RUNNERS}
    for project in projects.values():
        argv = [CONVEYOR, "demo", "--dir", str(project), "--rows", str(rows)]
        _timed([*argv, "--seed", str(SEED)], env)
    runs = {"conveyor": _conveyor_run, "airflow": _airflow_run}
    result: dict[str, Any] = {"order": list(order)}
    for phase in PHASES:
        result[phase] = {}
        for runner in order:
            print(f"  {phase} {runner} ...", end=" ", file=sys.stderr, flush=True)
            result[phase][runner] = runs[runner](projects[runner], env)
            run_id = RUN_ID if runner == "airflow" else None
            _check_phase(_record(projects[runner], run_id), phase, runner)
            print(f"{result[phase][runner]['wall_s']:.1f} s", file=sys.stderr)
    return result


def measure(rows: int, rounds: int) -> dict[str, Any]:
    """``rounds`` interleaved rounds on twin demo projects, one Airflow metadata DB."""
    if not AIRFLOW.is_file():
        raise SystemExit("no .venv-airflow: run `make airflow` first")
    result: dict[str, Any] = {
        "settings": {
            "rows": rows,
            "seed": SEED,
            "dag": "conveyor_training",
            "airflow": _version([str(AIRFLOW), "version"]),
            "airflow_mode": "airflow dags test (no executor), SQLite metadata DB",
            "conveyor": _version([CONVEYOR, "--version"]),
            "projects": "twin demo projects per round (same rows, same seed), empty caches",
            "order": "alternates per round; fresh then cached",
            "goal_s": GOAL_S,
        },
        "rounds": [],
    }
    with tempfile.TemporaryDirectory(prefix="conveyor-airflow-bench-") as tmp:
        base = Path(tmp)
        env = _env(base)
        print("airflow db migrate", file=sys.stderr)
        _timed([str(AIRFLOW), "db", "migrate"], env)
        for index in range(rounds):
            order = RUNNERS if index % 2 == 0 else RUNNERS[::-1]
            print(f"round {index + 1}/{rounds} ({' first, then '.join(order)})", file=sys.stderr)
            started = time.perf_counter()
            folder = base / f"round-{index}"
            result["rounds"].append(one_round(folder, rows, order, env))
            print(f"  round took {time.perf_counter() - started:.0f} s", file=sys.stderr)
    result["summary"] = summarize(result["rounds"])
    return result


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and spread over the rounds, per phase; the goal met only in every round."""
    summary: dict[str, Any] = {}
    for phase in PHASES:
        airflow = [r[phase]["airflow"] for r in rounds]
        tasks = list(airflow[0]["task_overhead_s"])
        summary[phase] = {
            "conveyor_run_s": publish.stats([r[phase]["conveyor"]["wall_s"] for r in rounds]),
            "airflow_wall_s": publish.stats([a["wall_s"] for a in airflow]),
            "airflow_outside_tasks_s": publish.stats([a["outside_tasks_s"] for a in airflow]),
            "first_task_overhead_s": publish.stats([a["first_task_overhead_s"] for a in airflow]),
            "steady_median_s": publish.stats([a["steady_median_s"] for a in airflow]),
            "steady_max_s": publish.stats([a["steady_max_s"] for a in airflow]),
            "task_overhead_s": {
                task: publish.stats([a["task_overhead_s"][task] for a in airflow]) for task in tasks
            },
            "goal_met": all(a["steady_max_s"] <= GOAL_S for a in airflow),
            "rounds_over_goal": sum(a["steady_max_s"] > GOAL_S for a in airflow),
        }
    return summary


def _spread(s: dict[str, float], digits: int = 1) -> str:
    if s["min"] == s["max"]:
        return f"{s['median']:.{digits}f}"
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


def _goal(phase: dict[str, Any], rounds: int) -> str:
    if phase["goal_met"]:
        return f"met in every round ({rounds})"
    return f"not met ({phase['rounds_over_goal']} of {rounds} rounds over)"


def render(result: dict[str, Any]) -> str:
    """The Markdown between the markers, in docs/benchmarks.md and docs/airflow.md."""
    meta, settings, s = result["meta"], result["settings"], result["summary"]
    rounds = len(result["rounds"])
    others = len(s["fresh"]["task_overhead_s"]) - 1
    lines = [
        f"Measured in `benchmarks/results-airflow.json` ({meta['date'][:10]}, "
        f"{meta['machine'].split(',')[0]}, commit {meta['commit'][:10]}, load average "
        f"{meta['load_average_start']} at the start, {meta['seconds'] / 60:.0f} minutes); "
        f"{rounds} interleaved round{'s' if rounds != 1 else ''}, median (min-max); "
        "`make bench-airflow` reproduces it. "
        f"Each round: twin demo projects of {settings['rows']:,} rows (seed "
        f"{settings['seed']}) with empty caches, `conveyor run` (Conveyor "
        f"{settings['conveyor']}) on one and `airflow dags test conveyor_training` (Airflow "
        f"{settings['airflow']}, no executor, SQLite metadata DB) on the other, which goes "
        "first alternating from one round to the next; then both again, fully cached. "
        "Per-task overhead = the Airflow task's wall time minus the step's own seconds in "
        "the run record (start of the `conveyor` process + Airflow's task bookkeeping); "
        "outside the tasks: the `airflow` process's start, DAG parsing and the run's own "
        "bookkeeping. The first task also carries "
        "`dags test`'s one-time start of its in-process execution API, shown on its own.",
        "",
        f"| phase | `conveyor run` (s) | Airflow DAG run (s) | of which outside the tasks "
        f"(s) | first task's overhead (s) | per-task overhead, other {others} tasks: median "
        f"of a round (s) | same: max of a round (s) | goal: <= {GOAL_S:.0f} s for each of "
        f"the other {others} tasks |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for phase in PHASES:
        p = s[phase]
        lines.append(
            f"| {phase} | {_spread(p['conveyor_run_s'])} | {_spread(p['airflow_wall_s'])} | "
            f"{_spread(p['airflow_outside_tasks_s'])} | "
            f"{_spread(p['first_task_overhead_s'])} | {_spread(p['steady_median_s'], 2)} | "
            f"{_spread(p['steady_max_s'], 2)} | {_goal(p, rounds)} |"
        )
    per_task = s["fresh"]["task_overhead_s"]
    lines += ["", "Fresh runs, overhead per task (s): " + ", ".join(
        f"{task} {_spread(v, 2)}" for task, v in per_task.items()
    ) + "."]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    publish.main(
        parser,
        lambda args: measure(args.rows, args.rounds),
        publish.Publication(RESULTS, DOCS, START, END, SECTION, render),
    )


if __name__ == "__main__":
    main()
