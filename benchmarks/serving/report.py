"""The serving benchmark's Markdown: provenance and settings, tables, goals.

Rendered from the results file only (``summary.summarize`` made its ``summary``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import publish
from benchmarks.markers import write_between

__all__ = ["DOC", "END", "RESULTS", "SECTION", "START", "render", "spread"]

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results-serving.json"
DOC = ROOT / "docs" / "benchmarks.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
START, END = "<!-- serving:start -->", "<!-- serving:end -->"
SUMMARY_START, SUMMARY_END = "<!-- serving-summary:start -->", "<!-- serving-summary:end -->"
SECTION = "## Serving"


def spread(s: dict[str, float] | None, fmt: str = "{:,.0f}") -> str:
    if s is None:
        return "-"
    if s["min"] == s["max"]:
        return fmt.format(s["median"])
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}-{fmt.format(s['max'])})"


def _x(value: float, *, percent: bool = False) -> str:
    if percent:
        return f"{value:.0%}"
    return f"{value:.1f}x" if value >= 1 else f"{value:.2f}x"


def _spread_x(s: dict[str, float] | None, *, percent: bool = False) -> str:
    if s is None:
        return "-"
    low, mid, high = (_x(s[k], percent=percent) for k in ("min", "median", "max"))
    return mid if s["min"] == s["max"] else f"{mid} ({low}-{high})"


def _short(reason: Any) -> str:
    text = " ".join(str(reason or "").split()).replace("|", "/")
    return text if len(text) <= 90 else text[:87] + "..."


def _header(result: dict[str, Any]) -> list[str]:
    meta, st, s = result["meta"], result["settings"], result["summary"]
    rounds = len(result["rounds"])
    seeds = ", ".join(str(r["seed"]) for r in result["rounds"])
    env = ", ".join(f"{k}={v}" for k, v in st["thread_env"].items())
    registered = ", ".join(f"{k} {v}" for k, v in st["registered_n_jobs"].items()) or "-"
    log_lines = sum(t["access_log_lines"] for t in s["targets"].values())
    batching = st["micro_batching"]
    features = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in st["serve_features"].items())
    versions = ", ".join(f"{k} {v}" for k, v in result["versions"].items())
    return [
        f"Measured in `benchmarks/results-serving.json` ({meta['date'][:10]}, {meta['machine']}, "
        f"commit {meta['commit'][:10]}; load average {meta['load_average_start']} at the start, "
        f"{result['load_average_end']} at the end; {rounds} interleaved round(s) in "
        f"{meta['seconds'] / 60:.0f} min); `python -m benchmarks.serving` reproduces it.",
        "",
        f"Method: each round starts every target afresh in an order shuffled with the round's "
        f"seed ({seeds}; the orders are in the results file), warms it up for "
        f"{st['warm_up_s']:g} s, then loads it for {st['seconds_per_point']:g} s per point "
        f"with {st['load_generator']} on the same machine. Figures: median (min-max) over the "
        "rounds; ratios are taken within a round, then summarised; a goal is met only if it is "
        "met in every round.",
        "",
        f"Settings, the same for every server: environment {env}; one estimator thread "
        f"(every pipeline step's `n_jobs` = {st['estimator_n_jobs']}: `conveyor serve` sets it "
        "at load, the peers are given the same fitted pipeline saved that way; registered: "
        f"{registered}); ONNX Runtime {st['onnx_runtime_threads']} intra-/inter-op thread; "
        f"access log {st['access_log']} ({log_lines} request lines in all the servers' logs); "
        f"micro-batching, where a server has it, at most {batching['max_rows']} rows or "
        f"{batching['max_wait_ms']:g} ms (Conveyor's `--batch-max-rows`/`--batch-max-wait-ms`, "
        "MLServer's `max_batch_size`/`max_batch_time`); the same number of workers on both "
        f"sides of every comparison (MLServer: {st['mlserver']['workers']} parallel inference "
        "workers behind its HTTP process). Single-row requests at "
        f"{' and '.join(str(c) for c in st['connections'])} connections (goals at "
        f"{st['goal_connections']}); batches of "
        f"{' and '.join(f'{r:,}' for r in st['batch_rows'])} rows at "
        f"{st['batch_connections']} connections. `conveyor serve` options in this build: "
        f"{features}. Versions: {versions}.",
    ]


def _single_table(result: dict[str, Any]) -> list[str]:
    s = result["summary"]
    rounds = len(result["rounds"])
    by_key = {t["key"]: t for t in result["settings"]["targets"]}
    lines = [
        "| server | workers | conns | req/s | p50 ms | p99 ms | rounds ok "
        "| non-2xx / socket err. |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in s["points"]:
        if p["rows"] != 1:
            continue
        target, facts = by_key[p["key"]], s["targets"][p["key"]]
        head = f"| {target['label']} | {target['workers']} | {p['connections']}"
        if not p["rounds_ok"]:
            lines.append(f"{head} | {_short(facts['problem'])} | | | 0/{rounds} | |")
            continue
        lines.append(
            f"{head} | {spread(p['rps'])} | {spread(p['p50_ms'], '{:.1f}')} | "
            f"{spread(p['p99_ms'], '{:.1f}')} | {p['rounds_ok']}/{rounds} | "
            f"{p['non_2xx']} / {p['socket_errors']} |"
        )
    return lines


def _ratio_table(result: dict[str, Any]) -> list[str]:
    by_key = {t["key"]: t for t in result["settings"]["targets"]}
    lines = [
        "| Conveyor | against | alike | conns | req/s ratio | per round |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["summary"]["ratios"]:
        a, b = by_key[r["a"]], by_key[r["b"]]
        per_round = ", ".join("-" if x is None else _x(x) for x in r["per_round"])
        lines.append(
            f"| {a['label']} ({a['workers']}w) | {b['label']} ({b['workers']}w) | {r['alike']} | "
            f"{r['connections']} | {_spread_x(r['ratio'])} | {per_round} |"
        )
    return lines


def _batch_table(result: dict[str, Any]) -> list[str]:
    by_key = {t["key"]: t for t in result["settings"]["targets"]}
    points = {(p["key"], p["rows"]): p for p in result["summary"]["points"] if p["rows"] > 1}
    lines = [
        "| server | rows/request | rows/s served | p99 ms | rows/s in-process | served / "
        "in-process |",
        "|---|---|---|---|---|---|",
    ]
    for b in result["summary"]["batched"]:
        target, p = by_key.get(b["key"]), points.get((b["key"], b["rows"]))
        if target is None or p is None:
            continue
        ratio = b["served_over_in_process"]
        lines.append(
            f"| {target['label']} ({target['workers']}w) | {b['rows']:,} | "
            f"{spread(b['served_rows_per_s'])} | {spread(p['p99_ms'], '{:.1f}')} | "
            f"{spread(b['in_process_rows_per_s'])} ({b['runtime']}) | "
            f"{spread(ratio, '{:.0%}')} |"
        )
    return lines


def _swap_lines(result: dict[str, Any]) -> list[str]:
    w = result["summary"]["swap"]
    if w is None:
        return ["Hot swap: skipped."]
    if not w["rounds_ok"]:
        return [f"Hot swap: {_short(w['problem'])}"]
    st = result["settings"]["hot_swap"]

    def versions(name: str) -> str:
        counts = w["versions"][name]
        return ", ".join(
            f"{k}: {n}" if k in ("error", "none") else f"v{k}: {n}"
            for k, n in sorted(counts.items())
        )

    lines = [
        f"Hot swap ({st['workers']} worker, {st['connections']} connections, {st['seconds']:g} s "
        "per run, the steady run just before the swap run on the same server; `champion` moved "
        f"and `POST /admin/reload` every second: {w['swaps_during_load']} swaps while the load "
        f"ran, {w['failed_reloads']} reloads failed, {w['errors']} requests failed, over "
        f"{w['rounds_ok']} round(s)):",
        "",
        "| run | req/s | p50 ms | p99 ms | max ms | answers per version (all rounds) |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("steady", "swap"):
        lines.append(
            f"| {name} | {spread(w[f'{name}_rps'])} | {spread(w[f'{name}_p50_ms'], '{:.1f}')} |"
            f" {spread(w[f'{name}_p99_ms'], '{:.1f}')} | {spread(w[f'{name}_max_ms'], '{:.1f}')}"
            f" | {versions(name)} |"
        )
    lines += ["", f"p99 during swaps / steady p99: {_spread_x(w['p99_ratio'])}."]
    return lines


def _goal_round_text(x: dict[str, Any] | None, *, percent: bool) -> str:
    if x is None:
        return "-"
    p99 = f", p99 {x['p99_ms']:.1f} ms" if "p99_ms" in x else ""
    return f"{_x(x['ratio'], percent=percent)}{p99}"


def _goal_table(result: dict[str, Any]) -> list[str]:
    by_key = {t["key"]: t for t in result["settings"]["targets"]}
    lines = [
        "| goal | compared | per round | median (min-max) | verdict |",
        "|---|---|---|---|---|",
    ]
    for g in result["summary"]["goals"]:
        a, b = by_key.get(g["a"]), by_key.get(g["b"])
        compared = "-"
        if a is not None and b is not None:
            compared = f"{a['label']} ({a['workers']}w) / {b['label']} ({b['workers']}w)"
        percent = g["at_least"] < 1
        per_round = "; ".join(_goal_round_text(x, percent=percent) for x in g["per_round"])
        median = _spread_x(g["ratio"], percent=percent)
        if g["p99_ms"] is not None:
            median += f", p99 {spread(g['p99_ms'], '{:.1f}')} ms"
        verdict = "not measured"
        if g["measured"]:
            verdict = f"{publish.verdict(g['met'])} ({g['met_rounds']} of {g['rounds']} rounds)"
        lines.append(f"| {g['goal']} | {compared} | {per_round} | {median} | {verdict} |")
    return lines


def render_summary(result: dict[str, Any]) -> str:
    """The goals, for docs/architecture.md."""
    meta = result["meta"]
    lines = [
        f"Measured {meta['date'][:10]} at commit {meta['commit'][:10]},"
        f" {result['settings']['goal_connections']} connections, every ratio within a round"
        " (full tables and settings in [benchmarks.md](benchmarks.md#serving)):",
        "",
    ]
    return "\n".join(lines + _goal_table(result))


def render(result: dict[str, Any]) -> str:
    """The Markdown between the ``serving`` markers; the goals in docs/architecture.md are
    rewritten beside it."""
    write_between(ARCHITECTURE, SUMMARY_START, SUMMARY_END, render_summary(result))
    connections = result["settings"]["goal_connections"]
    sections: list[tuple[str, Callable[[dict[str, Any]], list[str]]]] = [
        ("Single-row requests:", _single_table),
        ("Throughput ratios, within each round:", _ratio_table),
        (
            f"Batched requests ({result['settings']['batch_connections']} connections) against "
            "prediction in-process on the same rows, in the same round:",
            _batch_table,
        ),
        ("", _swap_lines),
        (
            f"Goals ({connections} connections; the monitoring overhead is measured below):",
            _goal_table,
        ),
    ]
    lines = _header(result)
    for title, table in sections:
        lines += ["", title, ""] if title else [""]
        lines += table(result)
    return "\n".join(lines)
