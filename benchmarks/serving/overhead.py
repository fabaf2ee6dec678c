"""Monitoring overhead, measured by alternation: ``python -m benchmarks.serving.overhead``.

One run of each server (as the main serving benchmark does) cannot resolve a 10 % effect on
a shared 2-core machine: two consecutive runs of the same server differ by more than that.
This benchmark starts ``conveyor serve`` (ONNX path, 1 worker) with monitoring on and with
``--no-monitoring``, and alternates short wrk runs between the two, so that both see the
same machine; the ratio of their medians is the overhead. Results are printed and, unless
``--no-write``, stored in ``benchmarks/results-overhead.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.serving import targets
from benchmarks.serving.demo import build_demo, mlflow_body
from benchmarks.serving.load import LoadGenerator, find_wrk

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parents[1] / "results-overhead.json"
CONNECTIONS = 16
SERVERS = {
    "on": ("--runtime", "onnx"),
    "off": ("--runtime", "onnx", "--no-monitoring"),
}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving.overhead")
    parser.add_argument("--rounds", type=int, default=5, help="Alternations (default 5).")
    parser.add_argument("--seconds", type=float, default=6.0, help="Seconds per wrk run.")
    parser.add_argument("--project", type=Path, help="Build (or reuse) the demo project here.")
    parser.add_argument("--no-write", action="store_true", help="Print only.")
    return parser.parse_args()


def measure(project: Path, logs: Path, *, rounds: int, seconds: float) -> dict[str, Any]:
    """Alternate wrk runs between the two servers; req/s of every run and the ratio."""
    wrk = find_wrk()
    if wrk is None:
        raise SystemExit("wrk is not installed: `apt-get install wrk`")
    load = LoadGenerator(wrk, threads=1)
    model = build_demo(project)
    body = mlflow_body(model.rows.head(1))
    runs: dict[str, list[float]] = {name: [] for name in SERVERS}
    with contextlib.ExitStack() as stack:
        servers = {
            name: stack.enter_context(
                targets.conveyor_serve(model.config, workers=1, options=options, logs=logs)
            )
            for name, options in SERVERS.items()
        }
        for server in servers.values():  # connections open, first-request costs paid
            load.run(server.url + "/invocations", body, connections=CONNECTIONS, seconds=1.0)
        for round_ in range(rounds):
            for name, server in servers.items():
                result = load.run(
                    server.url + "/invocations", body, connections=CONNECTIONS, seconds=seconds
                )
                runs[name].append(round(result.rps, 1))
            print(f"round {round_ + 1}: on {runs['on'][-1]:.0f}, off {runs['off'][-1]:.0f} req/s")
    on, off = statistics.median(runs["on"]), statistics.median(runs["off"])
    return {
        "date": time.strftime("%Y-%m-%d"),
        "cpu_count": os.cpu_count(),
        "connections": CONNECTIONS,
        "seconds": seconds,
        "runs": runs,
        "median_on": on,
        "median_off": off,
        "on_over_off": round(on / off, 3),
    }


def main() -> None:
    """Run the alternation and print (and store) the ratio."""
    args = _arguments()
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        project = args.project.resolve() if args.project else Path(tmp) / "demo"
        project.mkdir(parents=True, exist_ok=True)
        logs = Path(tmp) / "logs"
        logs.mkdir()
        results = measure(project, logs, rounds=args.rounds, seconds=args.seconds)
    print(
        f"monitoring on: median {results['median_on']:.0f} req/s; off: "
        f"{results['median_off']:.0f} req/s; on = {results['on_over_off']:.0%} of off"
    )
    if not args.no_write:
        RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
