"""The serving benchmark's summary over its rounds, and its goals.

Figures are the median (min-max) over the rounds; a ratio is taken within each round (both
sides measured minutes apart at most, on the same machine) and then summarised; a goal is
met only if it is met in every round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmarks import publish

__all__ = ["GOALS", "Goal", "summarize"]

# Compared pairs, single-row requests: (Conveyor target, the other, what is alike).
PAIRS = (
    ("conveyor-onnx-2w", "mlflow-2w", "ONNX Runtime against the pipeline in MLflow's server"),
    ("conveyor-pipeline-2w", "mlflow-2w", "the same pipeline, no batching on either side"),
    ("conveyor-pipeline-batched-2w", "mlserver-2w", "the same pipeline, batching on both sides"),
    ("conveyor-onnx-2w", "hello-2w", "share of the bare ASGI app"),
    ("conveyor-onnx-1w", "hello-1w", "share of the bare ASGI app"),
)
# Batched requests against in-process prediction of the same rows: (target, runtime).
BATCHED = (("conveyor-onnx-2w", "onnx"), ("conveyor-pipeline-batched-2w", "pipeline.predict"))


@dataclass(frozen=True)
class Goal:
    """``a`` at least ``at_least`` times ``b`` in req/s (and ``a``'s p99 at most ``p99_ms``)."""

    text: str
    a: str
    b: str
    at_least: float
    p99_ms: float | None = None


GOALS = (
    Goal(
        "ONNX path >= 20x `mlflow models serve`'s req/s, p99 <= 20 ms",
        "conveyor-onnx-2w",
        "mlflow-2w",
        20.0,
        p99_ms=20.0,
    ),
    Goal(
        "pipeline path with micro-batching >= 2x MLServer with adaptive batching",
        "conveyor-pipeline-batched-2w",
        "mlserver-2w",
        2.0,
    ),
    Goal("ONNX path >= 40% of the bare ASGI app's req/s", "conveyor-onnx-2w", "hello-2w", 0.4),
)


def _point(one_round: dict[str, Any], key: str, connections: int, rows: int = 1) -> Any:
    """The round's ok point of ``key``, or None."""
    target = one_round["targets"].get(key, {})
    for p in target.get("points", []) if target.get("status") == "ok" else []:
        if (p["connections"], p["rows"]) == (connections, rows) and p.get("status") == "ok":
            return p
    return None


def _stats(values: list[float]) -> dict[str, float] | None:
    return publish.stats(values) if values else None


def _point_summaries(result: dict[str, Any]) -> list[dict[str, Any]]:
    rounds = result["rounds"]
    found: list[dict[str, Any]] = []
    for target in result["settings"]["targets"]:
        shapes = [(c, 1) for c in target["connections"]]
        if target["batches"]:
            batch_connections = result["settings"]["batch_connections"]
            shapes += [(batch_connections, r) for r in result["settings"]["batch_rows"]]
        for connections, rows in shapes:
            points = [_point(r, target["key"], connections, rows) for r in rounds]
            ok = [p for p in points if p is not None]
            found.append(
                {
                    "key": target["key"],
                    "connections": connections,
                    "rows": rows,
                    "rounds_ok": len(ok),
                    **{m: _stats([p[m] for p in ok]) for m in ("rps", "p50_ms", "p99_ms")},
                    "rows_per_s": _stats([p["rps"] * rows for p in ok]),
                    "non_2xx": sum(p["non_2xx"] for p in ok),
                    "socket_errors": sum(p["socket_errors"] for p in ok),
                }
            )
    return found


def _target_summaries(result: dict[str, Any]) -> dict[str, Any]:
    found = {}
    for target in result["settings"]["targets"]:
        runs = [r["targets"].get(target["key"], {}) for r in result["rounds"]]
        ok = [run for run in runs if run.get("status") == "ok"]
        reasons = [f"{run.get('status')}: {run.get('reason')}" for run in runs if run not in ok]
        found[target["key"]] = {
            "rounds_ok": len(ok),
            "problem": reasons[-1] if reasons else None,
            "start_s": _stats([run["start_s"] for run in ok if "start_s" in run]),
            "access_log_lines": sum(run.get("access_log_lines", 0) for run in ok),
            "runtime": next((run["runtime"] for run in ok if run.get("runtime")), None),
        }
    return found


def _ratio(one_round: dict[str, Any], a: str, b: str, connections: int) -> float | None:
    pa, pb = _point(one_round, a, connections), _point(one_round, b, connections)
    if pa is None or pb is None or not pb["rps"]:
        return None
    return float(pa["rps"]) / float(pb["rps"])


def _ratios(result: dict[str, Any]) -> list[dict[str, Any]]:
    conns = {t["key"]: t["connections"] for t in result["settings"]["targets"]}
    found = []
    for a, b, alike in PAIRS:
        for connections in [c for c in conns.get(a, []) if c in conns.get(b, [])]:
            per_round = [_ratio(r, a, b, connections) for r in result["rounds"]]
            found.append(
                {
                    "a": a,
                    "b": b,
                    "alike": alike,
                    "connections": connections,
                    "per_round": per_round,
                    "ratio": _stats([x for x in per_round if x is not None]),
                }
            )
    return found


def _in_process(one_round: dict[str, Any], runtime: str, rows: int) -> float | None:
    target = one_round["targets"].get("in-process", {})
    for p in target.get("points", []):
        if (p["runtime"], p["rows"]) == (runtime, rows) and "rows_per_s" in p:
            return float(p["rows_per_s"])
    return None


def _batched(result: dict[str, Any]) -> list[dict[str, Any]]:
    settings = result["settings"]
    found = []
    for key, runtime in BATCHED:
        for rows in settings["batch_rows"]:
            served, alone, ratios = [], [], []
            for r in result["rounds"]:
                p = _point(r, key, settings["batch_connections"], rows)
                base = _in_process(r, runtime, rows)
                served += [p["rps"] * rows] if p else []
                alone += [base] if base else []
                ratios += [p["rps"] * rows / base] if p and base else []
            found.append(
                {
                    "key": key,
                    "runtime": runtime,
                    "rows": rows,
                    "served_rows_per_s": _stats(served),
                    "in_process_rows_per_s": _stats(alone),
                    "served_over_in_process": _stats(ratios),
                }
            )
    return found


def _swap(result: dict[str, Any]) -> dict[str, Any] | None:
    runs = [r["targets"]["swap"] for r in result["rounds"] if "swap" in r["targets"]]
    ok = [run for run in runs if run.get("status") == "ok"]
    if not runs:
        return None
    versions: dict[str, dict[str, int]] = {"steady": {}, "swap": {}}
    for run in ok:
        for name, counts in versions.items():
            for version, count in run[name]["versions"].items():
                counts[version] = counts.get(version, 0) + count
    return {
        "rounds_ok": len(ok),
        "problem": next((f"{r['status']}: {r.get('reason')}" for r in runs if r not in ok), None),
        **{
            f"{name}_{m}": _stats([run[name][m] for run in ok])
            for name in ("steady", "swap")
            for m in ("rps", "p50_ms", "p99_ms", "max_ms")
        },
        "p99_ratio": _stats([run["swap"]["p99_ms"] / run["steady"]["p99_ms"] for run in ok]),
        "swaps_during_load": sum(run["swaps_during_load"] for run in ok),
        "failed_reloads": sum(run["failed_reloads"] for run in ok),
        "errors": sum(run[n]["non_2xx"] + run[n]["socket_errors"] for run in ok for n in versions),
        "versions": versions,
    }


def _goal_round(goal: Goal, one_round: dict[str, Any], connections: int) -> dict[str, Any] | None:
    ratio = _ratio(one_round, goal.a, goal.b, connections)
    if ratio is None:
        return None
    met = ratio >= goal.at_least
    measured: dict[str, Any] = {"ratio": ratio}
    if goal.p99_ms is not None:
        measured["p99_ms"] = float(_point(one_round, goal.a, connections)["p99_ms"])
        met = met and measured["p99_ms"] <= goal.p99_ms
    return {**measured, "met": met}


def _goals(result: dict[str, Any]) -> list[dict[str, Any]]:
    connections = result["settings"]["goal_connections"]
    found = []
    for goal in GOALS:
        per_round = [_goal_round(goal, r, connections) for r in result["rounds"]]
        measured = [x for x in per_round if x is not None]
        met_rounds = sum(x["met"] for x in measured)
        found.append(
            {
                "goal": goal.text,
                "a": goal.a,
                "b": goal.b,
                "at_least": goal.at_least,
                "per_round": per_round,
                "ratio": _stats([x["ratio"] for x in measured]),
                "p99_ms": _stats([x["p99_ms"] for x in measured if "p99_ms" in x]),
                "met_rounds": met_rounds,
                "rounds": len(per_round),
                "met": bool(measured) and met_rounds == len(per_round),
                "measured": bool(measured),
            }
        )
    return found


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Medians and spreads over the rounds, ratios within rounds, and the goals."""
    return {
        "points": _point_summaries(result),
        "targets": _target_summaries(result),
        "ratios": _ratios(result),
        "batched": _batched(result),
        "swap": _swap(result),
        "goals": _goals(result),
    }
