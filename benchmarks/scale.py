"""How a fresh ``conveyor run`` scales with data volume, against the plain script.

The rounds of ``benchmarks/pipeline.py`` at 100,000, 1 million and 5 million rows
(``--rows``): wall time of each step, of the whole run and of the plain script, and the
peak memory of both, interleaved over ``--rounds`` rounds (median and min-max). The
table and a plot go into docs/benchmarks.md; raw numbers in
``benchmarks/results-scale.json``. Not part of ``make bench`` (the 5-million-row rounds
alone take about 20 minutes here): ``make bench-scale``.

Usage: python -m benchmarks.scale [--rows 100000,1000000,5000000] [--rounds 3] [--no-write]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import pipeline, publish
from benchmarks.process import ROOT
from benchmarks.run import spread

RESULTS = ROOT / "benchmarks" / "results-scale.json"
DOC = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "images" / "pipeline-scale.png"
START, END = "<!-- scale:start -->", "<!-- scale:end -->"
SECTION = "## Scaling with data volume"


def measure(rows: list[int], rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="conveyor-scale-") as tmp:
        result = pipeline.measure(rows, rounds, Path(tmp))
    result["summary"] = {
        str(n): {
            "ratio": publish.stats(pipeline.ratios(raw, "conveyor_s", "plain_s")),
            "memory_ratio": publish.stats(pipeline.ratios(raw, "conveyor_rss_mb", "plain_rss_mb")),
        }
        for n, raw in result["raw"].items()
    }
    return result


def render(result: dict[str, Any]) -> str:
    """The table of time per step and peak memory, and the plot (written beside)."""
    plot(result)
    meta = result["meta"]
    rows = [str(n) for n in result["rows"]]
    names = list(pipeline.step_medians(result["raw"][rows[0]]))
    lines = [
        f"Measured in `benchmarks/results-scale.json` ({meta['date'][:10]}, {meta['machine']},"
        f" commit {meta['commit'][:10]}, load average {meta['load_average_start']} at the start;"
        f" {result['rounds']} interleaved rounds, median (min-max));"
        " `python -m benchmarks.scale` reproduces it."
        f" Settings: {'; '.join(result['settings'].values())}.",
        "",
        "| rows | plain script, s | `conveyor run`, s | ratio | peak memory: plain script, MB"
        " | `conveyor run`, MB | ratio | the DataFrame, MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in rows:
        raw = result["raw"][n]
        lines.append(
            f"| {int(n):,} | {spread(pipeline.per_round(raw, 'plain_s'))}"
            f" | {spread(pipeline.per_round(raw, 'conveyor_s'))}"
            f" | {spread(pipeline.ratios(raw, 'conveyor_s', 'plain_s'), '{:.2f}', 'x')}"
            f" | {spread(pipeline.per_round(raw, 'plain_rss_mb'), '{:,.0f}')}"
            f" | {spread(pipeline.per_round(raw, 'conveyor_rss_mb'), '{:,.0f}')}"
            f" | {spread(pipeline.ratios(raw, 'conveyor_rss_mb', 'plain_rss_mb'), '{:.2f}', 'x')}"
            f" | {result['dataframe_mb'][n]:,.0f} |"
        )
    lines += [
        "",
        "Median seconds per step of a fresh `conveyor run`, and of the whole run"
        f" ({pipeline.beside_note()}):",
        "",
        "| rows | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for n in rows:
        cells = " | ".join(f"{s:.1f}" for s in pipeline.step_medians(result["raw"][n]).values())
        lines.append(f"| {int(n):,} | {cells} |")
    lines += ["", f"![time per step and peak memory by rows]({PLOT.relative_to(DOC.parent)})"]
    return "\n".join(lines)


def plot(result: dict[str, Any]) -> None:
    """Stacked step times beside the plain script, and peak memory, per row count."""
    from matplotlib.figure import Figure

    rows = [str(n) for n in result["rows"]]
    labels = [f"{int(n):,}" for n in rows]
    medians = [pipeline.step_medians(result["raw"][n]) for n in rows]
    figure = Figure(figsize=(11, 5), layout="constrained")
    time_axes, memory_axes = figure.subplots(1, 2)
    positions = range(len(rows))
    bottoms = [0.0] * len(rows)
    steps = [name for name in medians[0] if name != "whole run"]
    for name in steps:
        heights = [m[name] / sum(m[n] for n in steps) * 100 for m in medians]
        time_axes.bar(positions, heights, 0.6, bottom=bottoms, label=name)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    for x, n in zip(positions, rows, strict=True):
        raw = result["raw"][n]
        ratio = publish.stats(pipeline.ratios(raw, "conveyor_s", "plain_s"))["median"]
        run = publish.stats(pipeline.per_round(raw, "conveyor_s"))["median"]
        time_axes.annotate(f"{run:.0f} s\n{ratio:.2f}x plain", (x, 101), ha="center", va="bottom")
    time_axes.set(
        xticks=list(positions),
        xticklabels=labels,
        xlabel="rows",
        ylabel="share of the step time of a fresh run, %",
        ylim=(0, 118),
        title="Where the time goes (median of the rounds)",
    )
    time_axes.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=5)
    width = 0.27
    series = [
        ("plain script", [_median(result, n, "plain_rss_mb") for n in rows]),
        ("conveyor run", [_median(result, n, "conveyor_rss_mb") for n in rows]),
        ("the DataFrame", [result["dataframe_mb"][n] for n in rows]),
    ]
    for i, (name, values) in enumerate(series):
        memory_axes.bar([x + (i - 1) * width for x in positions], values, width, label=name)
    memory_axes.set(
        xticks=list(positions),
        xticklabels=labels,
        xlabel="rows",
        ylabel="peak RSS, MB",
        title="Peak memory (median of the rounds)",
    )
    memory_axes.legend(fontsize=8)
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(PLOT, dpi=90)


def _median(result: dict[str, Any], rows: str, key: str) -> float:
    return publish.stats(pipeline.per_round(result["raw"][rows], key))["median"]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", default="100000,1000000,5000000", help="comma-separated")
    publish.main(
        parser,
        lambda args: measure([int(n) for n in args.rows.split(",")], args.rounds),
        publish.Publication(RESULTS, [DOC], START, END, SECTION, render),
    )
    print(f"plot: {PLOT}", file=sys.stderr)


if __name__ == "__main__":
    main()
