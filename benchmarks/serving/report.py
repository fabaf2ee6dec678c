"""Markdown tables and goals of a serving benchmark run; the docs section and the JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["DOC", "END", "RESULTS", "START", "evaluate_goals", "render", "write"]

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results-serving.json"
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- serving:start -->", "<!-- serving:end -->"
SECTION_HEAD = """## Serving

`python -m benchmarks.serving` ([benchmarks/serving/](../benchmarks/serving/)) measures
`conveyor serve` against `mlflow models serve`, Seldon MLServer 1.7.1 (adaptive batching) and a
bare ASGI "hello" app on the same uvicorn settings, on the same registered model (the demo
project's LightGBM pipeline), in the same run, with wrk (1 thread) on the same 2-core machine:
single-row JSON requests at 16 and 64 connections, batches of 100 and 1,000 rows against
in-process prediction, and p99 while the `champion` alias is swapped every second. Options the
build under test lacks are reported as "not available". `--seconds N` sets the time per point
(default 10), `--quick` runs 2 s per point; raw numbers in `benchmarks/results-serving.json`.
"""

GROUPS = (
    "hello",
    "hello-nodelay",
    "conveyor-onnx",
    "conveyor-pyfunc-batched",
    "conveyor-pyfunc",
    "mlflow",
    "mlserver",
)


def _find(
    points: list[dict[str, Any]], group: str, workers: int | None, connections: int, rows: int = 1
) -> dict[str, Any] | None:
    for p in points:
        if (
            (p["group"], p["connections"], p["rows"]) == (group, connections, rows)
            and (workers is None or p["workers"] == workers)
            and p["status"] == "ok"
        ):
            return p
    return None


def _ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
    if a is None or b is None or not b["rps"]:
        return None
    return float(a["rps"]) / float(b["rps"])


def _x(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}x" if value >= 1 else f"{value:.2f}x"


def evaluate_goals(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's goals, at 16 connections, Conveyor on 2 workers like its peers."""
    onnx = _find(points, "conveyor-onnx", 2, 16)
    batched = _find(points, "conveyor-pyfunc-batched", 2, 16)
    mlflow, mlserver = _find(points, "mlflow", None, 16), _find(points, "mlserver", None, 16)
    # The ceiling is the faster hello: uvicorn --workers 2 pays a delayed-ACK floor per request.
    hellos = [_find(points, g, 2, 16) for g in ("hello", "hello-nodelay")]
    hello = max((h for h in hellos if h is not None), key=lambda h: h["rps"], default=None)
    goals = []
    ratio = _ratio(onnx, mlflow)
    p99 = None if onnx is None else float(onnx["p99_ms"])
    goals.append(
        {
            "goal": "ONNX path >= 20x MLflow's throughput, p99 <= 20 ms",
            "measured": None if ratio is None else f"{ratio:.1f}x, p99 {p99:.1f} ms",
            "met": None if ratio is None or p99 is None else ratio >= 20 and p99 <= 20,
        }
    )
    ratio = _ratio(batched, mlserver)
    goals.append(
        {
            "goal": "pipeline path with batching >= 2x MLServer's batched throughput",
            "measured": None if ratio is None else f"{ratio:.1f}x",
            "met": None if ratio is None else ratio >= 2,
        }
    )
    ratio = _ratio(onnx, hello)
    goals.append(
        {
            "goal": "ONNX path >= 40% of the bare ASGI app (its faster 2-worker run)",
            "measured": None if ratio is None else f"{ratio:.0%}",
            "met": None if ratio is None else ratio >= 0.4,
        }
    )
    for workers in (1, 2):
        on = _find(points, "conveyor-onnx", workers, 16)
        off = _find(points, "conveyor-onnx-nomon", workers, 16)
        ratio = _ratio(on, off)
        goals.append(
            {
                "goal": f"monitoring on >= 90% of off (ONNX, {workers} worker(s))",
                "measured": None if ratio is None else f"{ratio:.0%}",
                "met": None if ratio is None else ratio >= 0.9,
            }
        )
    return goals


def _errors(p: dict[str, Any]) -> str:
    return f"{p['non_2xx']} / {p['socket_errors']}"


def _single_table(points: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| server | workers | runtime | conns | req/s | p50 ms | p99 ms | non-2xx / socket err. |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for group in GROUPS:
        for p in points:
            if p["group"] != group or p["rows"] != 1:
                continue
            head = f"| {p['label']} | {p['workers']} | {p.get('runtime', '-')} | {p['connections']}"
            if p["status"] != "ok":
                lines.append(f"{head} | {p['status']}: {_short(p.get('reason'))} | | | |")
                continue
            lines.append(
                f"{head} | {p['rps']:,.0f} | {p['p50_ms']:.1f} | {p['p99_ms']:.1f} | {_errors(p)} |"
            )
    return lines


def _short(reason: Any) -> str:
    text = " ".join(str(reason or "").split()).replace("|", "/")
    return text if len(text) <= 90 else text[:87] + "..."


def _ratio_table(points: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| Conveyor | workers | conns | vs mlflow (2w) | vs MLServer | vs hello (same workers) |",
        "|---|---|---|---|---|---|",
    ]
    for p in points:
        if not p["group"].startswith("conveyor") or p["rows"] != 1 or p["status"] != "ok":
            continue
        c = p["connections"]
        vs = (
            _find(points, "mlflow", None, c),
            _find(points, "mlserver", None, c),
            _find(points, "hello", p["workers"], c),
        )
        cells = " | ".join(_x(_ratio(p, other)) for other in vs)
        lines.append(f"| {p['label']} | {p['workers']} | {c} | {cells} |")
    return lines


def _batch_table(points: list[dict[str, Any]], offline: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| server | rows/request | req/s | rows/s | p99 ms | offline rows/s | served / offline |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in points:
        if p["rows"] == 1:
            continue
        runtime = "onnx" if p["group"] == "conveyor-onnx" else "pipeline.predict"
        base = next(
            (
                o
                for o in offline
                if o["runtime"] == runtime and o["rows"] == p["rows"] and "rows_per_s" in o
            ),
            None,
        )
        if p["status"] != "ok":
            lines.append(
                f"| {p['label']} | {p['rows']:,} | {p['status']}: "
                f"{_short(p.get('reason'))} | | | | |"
            )
            continue
        ratio = f"{p['rows_per_s'] / base['rows_per_s']:.0%}" if base else "-"
        offline_rate = f"{base['rows_per_s']:,.0f} ({runtime})" if base else "-"
        lines.append(
            f"| {p['label']} (2w) | {p['rows']:,} | {p['rps']:,.1f} | {p['rows_per_s']:,.0f}"
            f" | {p['p99_ms']:.1f} | {offline_rate} | {ratio} |"
        )
    for o in offline:
        if "rows_per_s" not in o:
            lines.append(
                f"| in-process {o['runtime']} | {o['rows']:,} | {o['status']}: "
                f"{_short(o.get('reason'))} | | | | |"
            )
    return lines


def _version(key: str, count: int) -> str:
    return f"{key}: {count}" if key in ("error", "none") else f"v{key}: {count}"


def _swap_table(swap: dict[str, Any]) -> list[str]:
    if not swap:
        return ["Hot swap: skipped."]
    if swap.get("status") != "ok":
        return [f"Hot swap: {swap.get('status', 'not run')}: {_short(swap.get('reason'))}"]
    lines = [
        f"Hot swap (1 worker, {swap['connections']} connections, {swap['seconds']:g} s per run;"
        f" `champion` moved and `POST /admin/reload` every second: {swap['swaps']} swaps,"
        f" {swap['swaps_during_load']} while the load ran, {swap['failed_reloads']} reloads"
        " failed):",
        "",
        "| run | req/s | p50 ms | p99 ms | max ms | non-2xx / socket err. | answers per version |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("steady", "swap"):
        r = swap[name]
        versions = ", ".join(_version(k, n) for k, n in sorted(r["versions"].items())) or "-"
        lines.append(
            f"| {name} | {r['rps']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |"
            f" {r['max_ms']:.1f} | {_errors(r)} | {versions} |"
        )
    return lines


def _features(results: dict[str, Any]) -> str:
    names = {
        "runtime": "--runtime",
        "batching": "--batch-max-rows/--batch-max-wait-ms",
        "max_concurrency": "--max-concurrency",
    }
    flags = results["serve_features"]
    return ", ".join(f"{names[k]} {'yes' if v else 'no'}" for k, v in flags.items())


def render(results: dict[str, Any]) -> str:
    """Markdown of one run: single-row table, ratios, batches, hot swap, goals."""
    m = results["machine"]
    points = results["points"]
    lines = [
        f"Measured {results['date']} on {m['cpu_count']} cores, Python {m['python']};"
        f" load: {m['load_generator']} on the same machine; {results['seconds']:g} s per"
        f" point; load average {m['loadavg_start']:.1f} at the start, {m['loadavg_end']:.1f} at"
        " the end (above 2 the machine was busy with other work: compare ratios only)."
        f" `conveyor serve` options in this build: {_features(results)}.",
        "",
        "Single-row requests:",
        "",
        *_single_table(points),
        "",
        "`TCP_NODELAY socket`: the hello app's 2 uvicorn workers on a listening socket made with"
        " `IPPROTO_TCP`. `uvicorn --workers N` binds with protocol 0, so asyncio does not set"
        " TCP_NODELAY on accepted connections and each keep-alive response waits for a delayed"
        " ACK (~40 ms floor per request); `conveyor serve --workers N` and"
        " `mlflow models serve -w N` start uvicorn that way.",
        "",
        "Throughput ratios (same run):",
        "",
        *_ratio_table(points),
        "",
        "Batched requests (4 connections) vs prediction in-process on the same rows:",
        "",
        *_batch_table(points, results["offline"]),
        "",
        *_swap_table(results["swap"]),
        "",
        "Goals (16 connections; Conveyor with 2 workers, like `mlflow models serve -w 2`):",
        "",
        "| goal | measured | met |",
        "|---|---|---|",
    ]
    for g in results["goals"]:
        met = {True: "yes", False: "no", None: "not measured"}[g["met"]]
        lines.append(f"| {g['goal']} | {g['measured'] or '-'} | {met} |")
    return "\n".join(lines)


def write(results: dict[str, Any], table: str) -> None:
    """Write the JSON results and replace (or append) the Serving section's table."""
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    doc = DOC.read_text(encoding="utf-8")  # re-read: other sections change under us
    if START in doc and END in doc:
        head, _, rest = doc.partition(START)
        _, _, tail = rest.partition(END)
        doc = f"{head}{START}\n{table}\n{END}{tail}"
    else:
        doc = f"{doc.rstrip()}\n\n{SECTION_HEAD}\n{START}\n{table}\n{END}\n"
    DOC.write_text(doc, encoding="utf-8")
