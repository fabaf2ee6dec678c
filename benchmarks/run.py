"""Conveyor's pipeline benchmarks, each against its baseline in the same rounds.

Our machines are shared and noisy, so every measure is compared with a baseline measured
in the same round, and the rounds interleave (``--rounds``, default 3; median and
min-max over the rounds; a goal is met only when every round meets it):

- ``conveyor --help`` against a bare ``python -c pass`` start (7 of each per round,
  alternating);
- the runner's fixed cost per step: 6 trivial steps, fresh and cached, in process;
- ``conveyor run`` on a fresh project against ``benchmarks/plain_script.py`` doing the same
  read, fit and evaluation, at each row count (``benchmarks/pipeline.py``), plus the
  cached re-run, the time of each step and the peak memory of both.

Results: ``benchmarks/results.json``; the table goes into docs/benchmarks.md.
``python -m benchmarks.scale`` takes the same measures up to 5 million rows.

Usage: python -m benchmarks.run [--rows 100000,1000000] [--rounds 3] [--no-write]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import pipeline, publish
from benchmarks.markers import write_between
from benchmarks.process import BIN, ROOT, timed

RESULTS = ROOT / "benchmarks" / "results.json"
DOC = ROOT / "docs" / "benchmarks.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
SUMMARY_START, SUMMARY_END = "<!-- pipeline-summary:start -->", "<!-- pipeline-summary:end -->"
SECTION = "## Results"
GOAL_HELP_S = 0.5
GOAL_STEP_MS = 50.0
GOAL_CACHED_S = 3.0
GOAL_OVERHEAD_S = 5.0  # fixed cost of a fresh run over the plain script, smallest table
GOAL_RATIO = 1.3  # conveyor run / plain script, largest table
AIM_RATIO = 2.0  # the same, smallest table
GOAL_MEMORY = 1.5  # peak RSS / the plain script's, largest table


def bench_help(repeats: int = 7) -> dict[str, float]:
    """Median start of ``conveyor --help`` and of the bare interpreter, alternating."""
    conveyor, python = [], []
    for _ in range(repeats):
        conveyor.append(timed([str(BIN / "conveyor"), "--help"])[0])
        python.append(timed([sys.executable, "-c", "pass"])[0])
    return {"conveyor_help_s": statistics.median(conveyor), "python_s": statistics.median(python)}


def bench_step_overhead(repeats: int = 5, n_steps: int = 6) -> dict[str, float]:
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
    return {"step_s": statistics.median(fresh), "cached_step_s": statistics.median(cached)}


def measure(rows: list[int], rounds: int) -> dict[str, Any]:
    """Start-up and per-step cost each round, then the pipeline rounds."""
    starts = []
    for r in range(rounds):
        starts.append({**bench_help(), **bench_step_overhead()})
        print(f"round {r + 1}/{rounds}: start-up and step cost", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp:
        result = pipeline.measure(rows, rounds, Path(tmp))
    result["start"] = starts
    result["summary"] = summarize(result)
    return result


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Medians, spreads and goal verdicts (met only when every round meets the goal)."""
    starts = result["start"]
    help_s = [s["conveyor_help_s"] for s in starts]
    step_ms = [s["step_s"] * 1000 for s in starts]
    rows = [str(n) for n in result["rows"]]
    small, large = result["raw"][rows[0]], result["raw"][rows[-1]]
    overhead = pipeline.differences(small, "conveyor_s", "plain_s")
    ratio_large = pipeline.ratios(large, "conveyor_s", "plain_s")
    ratio_small = pipeline.ratios(small, "conveyor_s", "plain_s")
    memory = pipeline.ratios(large, "conveyor_rss_mb", "plain_rss_mb")
    cached = [c for n in rows for c in pipeline.per_round(result["raw"][n], "cached_s")]
    return {
        "help_s": publish.stats(help_s),
        "step_ms": publish.stats(step_ms),
        f"overhead_s_{rows[0]}": publish.stats(overhead),
        f"ratio_{rows[-1]}": publish.stats(ratio_large),
        f"ratio_{rows[0]}": publish.stats(ratio_small),
        "goals": {
            "help": max(help_s) <= GOAL_HELP_S,
            "step": max(step_ms) <= GOAL_STEP_MS,
            "cached": max(cached) <= GOAL_CACHED_S,
            "overhead": max(overhead) <= GOAL_OVERHEAD_S,
            "ratio": max(ratio_large) <= GOAL_RATIO,
            "aim_ratio": max(ratio_small) <= AIM_RATIO,
            "memory": max(memory) <= GOAL_MEMORY,
        },
    }


def spread(values: list[float], fmt: str = "{:.1f}", unit: str = "") -> str:
    """``median (min-max)`` of the rounds."""
    s = publish.stats(values)
    return f"{fmt.format(s['median'])}{unit} ({fmt.format(s['min'])}-{fmt.format(s['max'])})"


def render(result: dict[str, Any]) -> str:
    """The results table, the goals and where the time of a fresh run goes; the summary
    in docs/architecture.md is rewritten beside it."""
    write_between(ARCHITECTURE, SUMMARY_START, SUMMARY_END, render_summary(result))
    meta, starts, goals = result["meta"], result["start"], result["summary"]["goals"]
    rows = [str(n) for n in result["rows"]]
    lines = [
        f"Measured in `benchmarks/results.json` ({meta['date'][:10]}, {meta['machine']},"
        f" commit {meta['commit'][:10]}, load average {meta['load_average_start']} at the start;"
        f" {result['rounds']} interleaved rounds, median (min-max));"
        " `python -m benchmarks.run` reproduces it."
        f" Settings: {'; '.join(result['settings'].values())}.",
        "",
        "| measure | Conveyor | baseline (same rounds) | ratio |",
        "|---|---|---|---|",
        f"| `conveyor --help` | {spread([s['conveyor_help_s'] for s in starts], '{:.2f}', ' s')}"
        f" | `python -c pass` {spread([s['python_s'] for s in starts], '{:.3f}', ' s')} | |",
        f"| runner cost per step (6 trivial steps) | {_ms(starts, 'step_s')} | | |",
        f"| runner cost per cached step | {_ms(starts, 'cached_step_s')} | | |",
    ]
    for n in rows:
        raw, label = result["raw"][n], f"{int(n):,} rows"
        run, plain = _cell(raw, "conveyor_s", unit=" s"), _cell(raw, "plain_s", unit=" s")
        rss = _cell(raw, "conveyor_rss_mb", "{:,.0f}", " MB")
        plain_rss = _cell(raw, "plain_rss_mb", "{:,.0f}", " MB")
        cached = f"{raw[0]['cached_steps']} of {raw[0]['steps']} steps cached"
        overhead = spread(pipeline.differences(raw, "conveyor_s", "plain_s"), unit=" s")
        lines += [
            f"| `conveyor run`, {label} | {run} | plain script {plain}"
            f" | {_ratio(raw, 'conveyor_s', 'plain_s')} |",
            f"| fixed overhead (run minus plain script), {label} | {overhead} | | |",
            f"| cached re-run, {label} ({cached}) | {_cell(raw, 'cached_s', '{:.2f}', ' s')} | | |",
            f"| peak memory, {label} | {rss} | plain script {plain_rss};"
            f" the DataFrame {result['dataframe_mb'][n]:,.0f} MB"
            f" | {_ratio(raw, 'conveyor_rss_mb', 'plain_rss_mb')} |",
        ]
    small, large = f"{int(rows[0]):,}", f"{int(rows[-1]):,}"
    lines += [
        "",
        "| goal | met |",
        "|---|---|",
        f"| `conveyor --help` within {GOAL_HELP_S} s | {publish.verdict(goals['help'])} |",
        f"| runner cost per step within {GOAL_STEP_MS:.0f} ms | {publish.verdict(goals['step'])} |",
        f"| cached re-run within {GOAL_CACHED_S:.0f} s | {publish.verdict(goals['cached'])} |",
        f"| fixed overhead of a fresh run at most {GOAL_OVERHEAD_S:.0f} s ({small} rows)"
        f" | {publish.verdict(goals['overhead'])} |",
        f"| `conveyor run` at most {GOAL_RATIO}x the plain script ({large} rows)"
        f" | {publish.verdict(goals['ratio'])} |",
        f"| aim: at most {AIM_RATIO:.0f}x the plain script ({small} rows)"
        f" | {publish.verdict(goals['aim_ratio'])} |",
        f"| peak memory at most {GOAL_MEMORY}x the plain script's ({large} rows)"
        f" | {publish.verdict(goals['memory'])} |",
        "",
        "A goal is met only when every round meets it.",
        "",
        "Where the time of a fresh `conveyor run` goes (median seconds per step, and of the"
        f" whole run). {_sentence(pipeline.beside_note())}:",
        "",
    ]
    names = list(pipeline.step_medians(result["raw"][rows[0]]))
    lines += ["| rows | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for n in rows:
        cells = " | ".join(f"{s:.1f}" for s in pipeline.step_medians(result["raw"][n]).values())
        lines.append(f"| {int(n):,} | {cells} |")
    return "\n".join(lines)


def render_summary(result: dict[str, Any]) -> str:
    """A short table for docs/architecture.md."""
    meta, starts, goals = result["meta"], result["start"], result["summary"]["goals"]
    lines = [
        f"Measured {meta['date'][:10]} at commit {meta['commit'][:10]}, {result['rounds']}"
        " interleaved rounds, median (min-max); the full tables are in"
        " [benchmarks.md](benchmarks.md#results).",
        "",
        "| measure | result | goal |",
        "|---|---|---|",
        f"| `conveyor --help` | {spread([s['conveyor_help_s'] for s in starts], '{:.2f}', ' s')}"
        f" | {GOAL_HELP_S} s: {publish.verdict(goals['help'])} |",
        f"| runner cost per step | {_ms(starts, 'step_s')}"
        f" | {GOAL_STEP_MS:.0f} ms: {publish.verdict(goals['step'])} |",
    ]
    for n in (str(r) for r in result["rows"]):
        raw, label = result["raw"][n], f"{int(n):,} rows"
        lines += [
            f"| `conveyor run` / plain script, {label} | {_ratio(raw, 'conveyor_s', 'plain_s')}"
            f" ({_cell(raw, 'conveyor_s', unit=' s')} against {_cell(raw, 'plain_s', unit=' s')})"
            " | |",
            f"| fully cached re-run, {label} | {_cell(raw, 'cached_s', '{:.2f}', ' s')}"
            f" | {GOAL_CACHED_S:.0f} s |",
            f"| peak memory, {label} | {_cell(raw, 'conveyor_rss_mb', '{:,.0f}', ' MB')}"
            f" ({_ratio(raw, 'conveyor_rss_mb', 'plain_rss_mb')} the plain script's) | |",
        ]
    lines += [
        "",
        f"Goals: fixed overhead at most {GOAL_OVERHEAD_S:.0f} s"
        f" ({publish.verdict(goals['overhead'])}); at most {GOAL_RATIO}x the plain script on"
        f" the largest table ({publish.verdict(goals['ratio'])}); peak memory at most"
        f" {GOAL_MEMORY}x the plain script's there ({publish.verdict(goals['memory'])}).",
    ]
    return "\n".join(lines)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _cell(raw: list[dict[str, Any]], key: str, fmt: str = "{:.1f}", unit: str = "") -> str:
    return spread(pipeline.per_round(raw, key), fmt, unit)


def _ratio(raw: list[dict[str, Any]], top: str, bottom: str) -> str:
    return spread(pipeline.ratios(raw, top, bottom), "{:.2f}", "x")


def _ms(starts: list[dict[str, float]], key: str) -> str:
    return spread([s[key] * 1000 for s in starts], unit=" ms")


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,1000000", help="Comma-separated row counts.")
    publish.main(
        parser,
        lambda args: measure([int(n) for n in args.rows.split(",")], args.rounds),
        publish.Publication(RESULTS, [DOC], START, END, SECTION, render),
    )


if __name__ == "__main__":
    main()
