"""Monitoring overhead, measured by alternation: ``python -m benchmarks.serving.overhead``.

    python -m benchmarks.serving.overhead [--rounds 3] [--alternations 4] [--seconds 5]
                                          [--workers 1] [--seed 0] [--no-write] [--render-only]

One run per server cannot resolve a 10 % effect on a shared 2-core machine: two runs of the
same server minutes apart differ by more than that. Each round starts two ``conveyor serve``
processes side by side (ONNX path, the serving benchmark's settings: thread environment,
micro-batching limits, access log off), one with monitoring on and one with
``--no-monitoring``, in an order shuffled with the round's seed (``--seed`` + its index);
warms both up, then alternates ``--alternations`` pairs of wrk runs between them, the
first of each pair alternating too. A round's ratio is the median of its "on" runs over the
median of its "off" runs; the goal (on at least 90 % of off) is met only if it is met in
every round. Results: ``benchmarks/results-overhead.json``; the table goes between the
``serving-overhead`` markers of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import publish
from benchmarks.serving import report, targets
from benchmarks.serving.demo import DemoModel, build_demo, mlflow_body
from benchmarks.serving.load import LoadGenerator, find_wrk
from benchmarks.serving.points import GOAL_CONNECTIONS, WARM_UP_S

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parents[1] / "results-overhead.json"
START, END = "<!-- serving-overhead:start -->", "<!-- serving-overhead:end -->"
SECTION = "### Monitoring overhead, measured by alternation"
GOAL = 0.9
ONNX = ("--runtime", "onnx", *targets.BATCHING_OPTIONS)
SERVERS = {"on": ONNX, "off": (*ONNX, "--no-monitoring")}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.serving.overhead", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--alternations", type=int, default=4, help="Run pairs per round.")
    parser.add_argument("--seconds", type=float, default=5.0, help="Seconds per wrk run.")
    parser.add_argument("--workers", type=int, default=1, help="Workers of both servers.")
    parser.add_argument("--seed", type=int, default=0, help="Round i shuffles with seed+i.")
    parser.add_argument("--project", type=Path, help="Build (or reuse) the demo project here.")
    return parser


def one_round(
    model: DemoModel, load: LoadGenerator, logs: Path, args: argparse.Namespace, seed: int
) -> dict[str, Any]:
    """Start both servers in the seed's order; alternate wrk runs; req/s and the ratio."""
    body = mlflow_body(model.rows.head(1))
    order = list(SERVERS)
    random.Random(seed).shuffle(order)
    runs: dict[str, list[float]] = {name: [] for name in SERVERS}
    with contextlib.ExitStack() as stack:
        urls = {
            name: stack.enter_context(
                targets.conveyor_serve(
                    model.config, workers=args.workers, options=SERVERS[name], logs=logs
                )
            ).url
            + "/invocations"
            for name in order
        }
        for url in urls.values():  # connections open, first-request costs paid
            load.run(url, body, connections=GOAL_CONNECTIONS, seconds=WARM_UP_S)
        for turn in range(args.alternations):
            for name in order if turn % 2 == 0 else order[::-1]:
                result = load.run(
                    urls[name], body, connections=GOAL_CONNECTIONS, seconds=args.seconds
                )
                runs[name].append(round(result.rps, 1))
            print(
                f"  alternation {turn + 1}/{args.alternations}: on {runs['on'][-1]:,.0f}, "
                f"off {runs['off'][-1]:,.0f} req/s",
                flush=True,
            )
    on, off = statistics.median(runs["on"]), statistics.median(runs["off"])
    return {
        "seed": seed,
        "start_order": order,
        "runs": runs,
        "median_on": on,
        "median_off": off,
        "on_over_off": on / off,
        "load_average_end": round(os.getloadavg()[0], 1),
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every round; the settings, the rounds and their summary."""
    if args.rounds < 1 or args.alternations < 1:
        sys.exit("--rounds and --alternations: at least 1")
    wrk = find_wrk()
    if wrk is None:
        sys.exit("wrk is not installed: `make bench-deps`")
    load = LoadGenerator(wrk, threads=1)
    rounds = []
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        project = args.project.resolve() if args.project else Path(tmp) / "demo"
        project.mkdir(parents=True, exist_ok=True)
        model = build_demo(project)
        for index in range(args.rounds):
            print(f"round {index + 1}/{args.rounds} (seed {args.seed + index})", flush=True)
            rounds.append(one_round(model, load, Path(tmp) / "logs", args, args.seed + index))
    ratios = [r["on_over_off"] for r in rounds]
    return {
        "settings": {
            "runtime": "onnx",
            "workers": args.workers,
            "options": {name: list(options) for name, options in SERVERS.items()},
            "connections": GOAL_CONNECTIONS,
            "alternations": args.alternations,
            "seconds_per_run": args.seconds,
            "warm_up_s": WARM_UP_S,
            "rounds": args.rounds,
            "seed": args.seed,
            "load_generator": load.describe(),
            "thread_env": dict(targets.THREAD_ENV),
            "access_log": "off",
        },
        "load_average_end": round(os.getloadavg()[0], 1),
        "rounds": rounds,
        "summary": {
            "on_rps": publish.stats([r["median_on"] for r in rounds]),
            "off_rps": publish.stats([r["median_off"] for r in rounds]),
            "on_over_off": publish.stats(ratios),
            "goal": GOAL,
            "met_rounds": sum(x >= GOAL for x in ratios),
            "met": all(x >= GOAL for x in ratios),
        },
    }


def render(result: dict[str, Any]) -> str:
    """The Markdown between the ``serving-overhead`` markers."""
    meta, st, s = result["meta"], result["settings"], result["summary"]
    rounds = result["rounds"]
    env = ", ".join(f"{k}={v}" for k, v in st["thread_env"].items())
    options = " ".join(st["options"]["off"])
    lines = [
        f"Measured in `benchmarks/results-overhead.json` ({meta['date'][:10]}, {meta['machine']}, "
        f"commit {meta['commit'][:10]}; load average {meta['load_average_start']} at the "
        f"start, {result['load_average_end']} at the end; {len(rounds)} round(s) in "
        f"{meta['seconds'] / 60:.0f} min); `python -m benchmarks.serving.overhead` reproduces "
        f"it. Two `conveyor serve` processes, {st['workers']} worker(s) each, `{options}` and "
        f"the same without `--no-monitoring`; environment {env}; access log {st['access_log']}. "
        f"Per round: both started (order shuffled with the round's seed), warmed up for "
        f"{st['warm_up_s']:g} s, then {st['alternations']} alternations of "
        f"{st['seconds_per_run']:g} s runs each at {st['connections']} connections "
        f"({st['load_generator']}); the round's ratio is the median of its runs with "
        "monitoring on over the median of its runs with it off.",
        "",
        "| round (seed) | on, req/s | off, req/s | on / off |",
        "|---|---|---|---|",
    ]
    for index, r in enumerate(rounds, 1):
        lines.append(
            f"| {index} ({r['seed']}) | {r['median_on']:,.0f} | {r['median_off']:,.0f} | "
            f"{r['on_over_off']:.0%} |"
        )
    lines += [
        f"| median (min-max) | {report.spread(s['on_rps'])} | {report.spread(s['off_rps'])} | "
        f"{report.spread(s['on_over_off'], '{:.0%}')} |",
        "",
        f"Goal: monitoring on at least {s['goal']:.0%} of off, in every round: "
        f"{publish.verdict(s['met'])} ({s['met_rounds']} of {len(rounds)} rounds).",
    ]
    return "\n".join(lines)


def main() -> None:
    """Measure, print, record the results and render their section."""
    publish.main(
        _parser(),
        measure,
        publish.Publication(RESULTS, (report.DOC,), START, END, SECTION, render),
    )


if __name__ == "__main__":
    main()
