"""Serving benchmark: ``conveyor serve`` against its peers, in interleaved rounds.

    python -m benchmarks.serving [--rounds 3] [--seconds 5] [--quick] [--seed 0]
                                 [--skip PARTS] [--no-write] [--render-only]

Every round starts each target of :func:`benchmarks.serving.points.matrix` afresh, in an
order shuffled with the round's seed (``--seed`` + the round's index), warms it up, loads
it with wrk and stops it. Every server runs with the same thread environment, without an
access log, with the same number of workers as the server it is compared with and the same
micro-batching limits. Results: ``benchmarks/results-serving.json``; the tables go between
the ``serving`` markers of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import publish
from benchmarks.serving import report, summary, targets
from benchmarks.serving.demo import PeerModels, build_demo, peer_models
from benchmarks.serving.load import LoadGenerator, find_wrk
from benchmarks.serving.offline import InProcess
from benchmarks.serving.points import (
    BATCH_CONNECTIONS,
    BATCH_ROWS,
    CONNECTIONS,
    GOAL_CONNECTIONS,
    IN_PROCESS_S,
    WARM_UP_S,
    Bench,
    Target,
    describe,
    matrix,
)
from benchmarks.serving.swap import MIN_SECONDS, SWAP_CONNECTIONS

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
DEFAULT_SECONDS = 5.0
QUICK_SECONDS = 2.0
START_S = {"hello": 2.0, "conveyor": 10.0, "mlflow": 10.0, "mlserver": 15.0}  # for the estimate


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.serving", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="Seconds per point.")
    parser.add_argument(
        "--quick", action="store_true", help=f"Smoke run: {QUICK_SECONDS:g} s per point."
    )
    parser.add_argument("--project", type=Path, help="Build (or reuse) the demo project here.")
    parser.add_argument("--skip", default="", help=f"Comma-separated parts to skip: {PARTS}.")
    parser.add_argument("--seed", type=int, default=0, help="Round i shuffles with seed+i.")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1).")
    parser.add_argument(
        "--python-load",
        action="store_true",
        help="Without wrk, use the (much weaker) Python generator.",
    )
    return parser


def _load_generator(args: argparse.Namespace) -> LoadGenerator:
    wrk = find_wrk()
    if wrk is None and not args.python_load:
        sys.exit(
            "wrk is not installed: `make bench-deps` (or pass --python-load for a much "
            "weaker Python load generator whose numbers are not comparable)"
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


def _estimate_s(plan: list[Target], seconds: float, rounds: int) -> float:
    """A rough duration of the rounds (server starts guessed), printed before they run."""
    total = 0.0
    for t in plan:
        if t.kind == "in-process":
            total += 2 * len(BATCH_ROWS) * (min(seconds, IN_PROCESS_S) + 0.5)
        elif t.kind == "swap":
            total += START_S["conveyor"] + 2 * max(seconds, MIN_SECONDS)
        elif t.missing is None:
            points = len(t.connections) + (len(BATCH_ROWS) if t.batches else 0)
            total += START_S[t.kind] + WARM_UP_S + points * (seconds + 0.3)
    return total * rounds


def _bench(
    args: argparse.Namespace,
    plan: list[Target],
    load: LoadGenerator,
    features: targets.ServeFeatures,
    work: Path,
) -> tuple[Bench, dict[str, Any]]:
    """Build the demo model and what the targets need (not timed); the registered n_jobs."""
    project = args.project.resolve() if args.project else work / "demo"
    project.mkdir(parents=True, exist_ok=True)
    model = build_demo(project)
    print(f"model {model.name} v{model.champion} (versions {', '.join(model.versions)})")
    kinds = {t.kind for t in plan}
    peers: PeerModels | str = "not needed"
    if kinds & {"mlflow", "mlserver"}:
        print("saving the pipeline for the peers (n_jobs=1)", flush=True)
        try:
            peers = peer_models(model, work / "peers")
        except Exception as exc:  # recorded on the peers' points; the run goes on
            peers = f"{type(exc).__name__}: {exc}"[:600]
    mlserver_bin: Path | str = "not needed"
    if "mlserver" in kinds:
        try:
            mlserver_bin = targets.ensure_mlserver()
        except (targets.TargetError, OSError, ValueError) as exc:
            mlserver_bin = str(exc)[-600:]
    in_process: InProcess | str = "not needed"
    if "in-process" in kinds:
        in_process = InProcess.load(model)
    seconds = QUICK_SECONDS if args.quick else args.seconds
    bench = Bench(load, model, features, seconds, work / "logs", peers, mlserver_bin, in_process)
    registered = peers.n_jobs if not isinstance(peers, str) else {}
    return bench, registered


def _rounds(bench: Bench, plan: list[Target], *, rounds: int, seed: int) -> list[dict[str, Any]]:
    """Every target once per round, in the round's shuffled order."""
    done: list[dict[str, Any]] = []
    started = time.perf_counter()
    for index in range(rounds):
        order = list(plan)
        random.Random(seed + index).shuffle(order)
        print(f"round {index + 1}/{rounds} (seed {seed + index})", flush=True)
        measured: dict[str, Any] = {}
        for position, target in enumerate(order, 1):
            workers = f", {target.workers} worker(s)" if target.workers else ""
            print(
                f"  round {index + 1}/{rounds}, target {position}/{len(order)}: "
                f"{target.label}{workers} [{time.perf_counter() - started:.0f} s]",
                flush=True,
            )
            measured[target.key] = bench.run(target)
            if measured[target.key].get("status") != "ok":
                print(f"    {measured[target.key]['status']}: {measured[target.key].get('reason')}")
        done.append(
            {
                "seed": seed + index,
                "order": [t.key for t in order],
                "load_average_end": round(os.getloadavg()[0], 1),
                "targets": measured,
            }
        )
    return done


def _settings(
    args: argparse.Namespace, bench: Bench, plan: list[Target], registered: dict[str, Any]
) -> dict[str, Any]:
    """What every compared pair shares, as recorded with the results and in their header."""
    return {
        "rounds": args.rounds,
        "seed": args.seed,
        "order": "shuffled per round with random.Random(seed + round index)",
        "seconds_per_point": bench.seconds,
        "warm_up_s": WARM_UP_S,
        "in_process_s": min(bench.seconds, IN_PROCESS_S),
        "connections": list(CONNECTIONS),
        "goal_connections": GOAL_CONNECTIONS,
        "batch_rows": list(BATCH_ROWS),
        "batch_connections": BATCH_CONNECTIONS,
        "load_generator": bench.load.describe(),
        "thread_env": dict(targets.THREAD_ENV),
        "estimator_n_jobs": 1,
        "registered_n_jobs": registered,
        "onnx_runtime_threads": 1,
        "access_log": "off",
        "micro_batching": {
            "max_rows": targets.BATCH_MAX_ROWS,
            "max_wait_ms": targets.BATCH_MAX_WAIT_MS,
        },
        "mlserver": {"pins": list(targets.MLSERVER_PINS), "workers": targets.MLSERVER_WORKERS},
        "hot_swap": {
            "workers": 1,
            "connections": SWAP_CONNECTIONS,
            "seconds": max(bench.seconds, MIN_SECONDS),
        },
        "serve_features": dict(vars(bench.features)),
        "targets": [describe(t) for t in plan],
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the rounds; the results (settings, every round, the summary) as a dict."""
    skip = set(filter(None, args.skip.split(",")))
    if skip - set(PARTS):
        sys.exit(f"--skip: unknown parts {sorted(skip - set(PARTS))}; choose from {PARTS}")
    if args.rounds < 1:
        sys.exit("--rounds: at least 1")
    signal.signal(signal.SIGTERM, _raise_interrupt)
    load = _load_generator(args)
    features = targets.detect_features()
    plan = [t for t in matrix(features) if t.part not in skip]
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        try:
            bench, registered = _bench(args, plan, load, features, Path(tmp))
            estimate = _estimate_s(plan, bench.seconds, args.rounds)
            print(
                f"{len(plan)} targets x {args.rounds} round(s), {bench.seconds:g} s per point: "
                f"about {estimate / 60:.0f} min; load: {load.describe()}",
                flush=True,
            )
            rounds = _rounds(bench, plan, rounds=args.rounds, seed=args.seed)
        except KeyboardInterrupt:
            sys.exit("interrupted: every server started was stopped")
        result = {
            "settings": _settings(args, bench, plan, registered),
            "versions": _versions(),
            "model": {
                "name": bench.model.name,
                "version": bench.model.champion,
                "versions": list(bench.model.versions),
            },
            "load_average_end": round(os.getloadavg()[0], 1),
            "rounds": rounds,
        }
    result["summary"] = summary.summarize(result)
    return result


def main() -> None:
    """Measure, print, record the results and render the Serving section."""
    publish.main(
        _parser(),
        measure,
        publish.Publication(
            report.RESULTS, (report.DOC,), report.START, report.END, report.SECTION, report.render
        ),
    )


if __name__ == "__main__":
    main()
