"""Entry point of the serving benchmark: ``python -m benchmarks.serving [--quick]``."""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.serving import report, targets
from benchmarks.serving.demo import build_demo
from benchmarks.serving.load import LoadGenerator, find_wrk
from benchmarks.serving.offline import offline_points
from benchmarks.serving.points import BATCH_ROWS, Bench
from benchmarks.serving.swap import hot_swap

__all__ = ["main"]

PARTS = ("hello", "conveyor", "batches", "mlflow", "mlserver", "swap")
PACKAGES = (
    "conveyor-mlops",
    "mlflow",
    "scikit-learn",
    "lightgbm",
    "onnxruntime",
    "uvicorn",
    "fastapi",
    "pandas",
    "numpy",
)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.serving",
        description="Benchmark conveyor serve against mlflow models serve, MLServer and a "
        "bare ASGI app; write docs/benchmarks.md (Serving) and benchmarks/results-serving.json.",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="Seconds per point.")
    parser.add_argument("--quick", action="store_true", help="Smoke run: 2 s per point.")
    parser.add_argument("--project", type=Path, help="Build (or reuse) the demo project here.")
    parser.add_argument("--skip", default="", help=f"Comma-separated parts to skip: {PARTS}.")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1).")
    parser.add_argument(
        "--python-load",
        action="store_true",
        help="Without wrk, use the (much weaker) Python generator.",
    )
    parser.add_argument("--no-write", action="store_true", help="Print only.")
    args = parser.parse_args()
    unknown = set(filter(None, args.skip.split(","))) - set(PARTS)
    if unknown:
        parser.error(f"--skip: unknown parts {sorted(unknown)}; choose from {PARTS}")
    if args.quick:
        args.seconds = 2.0
    return args


def _load_generator(args: argparse.Namespace) -> LoadGenerator:
    wrk = find_wrk()
    if wrk is None and not args.python_load:
        sys.exit(
            "wrk is not installed: `apt-get install wrk` (or pass --python-load for a "
            "much weaker Python load generator whose numbers are not comparable)"
        )
    return LoadGenerator(wrk, threads=args.wrk_threads)


def _versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds every `with` block: servers are stopped


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Run every part not skipped; the results as a JSON-friendly dict."""
    load = _load_generator(args)
    skip = set(filter(None, args.skip.split(",")))
    loadavg_start = os.getloadavg()[0]
    features = targets.detect_features()
    print(f"conveyor serve options: {features}; load: {load.describe()}", flush=True)
    project = args.project.resolve() if args.project else work / "demo"
    project.mkdir(parents=True, exist_ok=True)
    model = build_demo(project)
    print(f"model {model.name} v{model.champion} (versions {', '.join(model.versions)})")
    bench = Bench(load, model, features, args.seconds, work / "logs")
    if "hello" not in skip:
        bench.hello()
    if "conveyor" not in skip:
        bench.conveyor(batched="batches" not in skip)
    if "batches" not in skip:
        print("in-process prediction", flush=True)
        bench.offline = offline_points(model, BATCH_ROWS, min(args.seconds, 3.0))
    if "mlflow" not in skip:
        bench.mlflow()
    if "mlserver" not in skip:
        bench.mlserver(work)
    if "swap" not in skip:
        print("hot swap: steady run, then swap run", flush=True)
        bench.swap = hot_swap(model, load, seconds=args.seconds, logs=work / "logs", options=())
    return {
        "date": time.strftime("%Y-%m-%d"),
        "seconds": args.seconds,
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_start": loadavg_start,
            "loadavg_end": os.getloadavg()[0],
            "load_generator": load.describe(),
            "wrk_threads": args.wrk_threads if load.wrk else None,
            "versions": _versions(),
            "mlserver": {
                "pins": list(targets.MLSERVER_PINS),
                "parallel_workers": targets.MLSERVER_WORKERS,
                "max_batch_size": targets.MLSERVER_BATCH_SIZE,
                "max_batch_time_s": targets.MLSERVER_BATCH_TIME_S,
            },
        },
        "serve_features": dict(vars(features)),
        "model": {"name": model.name, "version": model.champion, "versions": model.versions},
        "points": bench.points,
        "offline": bench.offline,
        "swap": bench.swap,
        "goals": report.evaluate_goals(bench.points),
    }


def main() -> None:
    """Run the benchmark, print the tables, write the results (unless --no-write)."""
    args = _arguments()
    signal.signal(signal.SIGTERM, _raise_interrupt)
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        try:
            results = run(args, Path(tmp))
        except KeyboardInterrupt:
            sys.exit("interrupted: every server started was stopped")
    table = report.render(results)
    print(table)
    if not args.no_write:
        report.write(results, table)
        print(f"wrote {report.RESULTS} and the Serving section of {report.DOC}")


if __name__ == "__main__":
    main()
