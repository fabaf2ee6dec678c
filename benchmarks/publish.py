"""What every benchmark does around its measurement: the command line, the provenance,
the results file, and the rendered table between its markers in the docs."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.markers import write_between
from benchmarks.provenance import run_meta


def stats(values: list[float]) -> dict[str, float]:
    """Median and spread of one measure over the rounds."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def verdict(met: bool) -> str:
    return "met" if met else "not met"


@dataclass(frozen=True)
class Publication:
    """Where a benchmark's results go: its results file, and its table in the docs."""

    results: Path
    docs: Sequence[Path]
    start: str
    end: str
    section: str
    render: Callable[[dict[str, Any]], str]

    def publish(self, result: dict[str, Any]) -> None:
        for doc in self.docs:
            write_between(doc, self.start, self.end, self.render(result), section=self.section)


def listed(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``: items in a rendered sentence."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def main(
    parser: argparse.ArgumentParser,
    measure: Callable[[argparse.Namespace], dict[str, Any]],
    publication: Publication,
) -> None:
    """``--rounds``, ``--no-write`` and ``--render-only`` on top of the benchmark's own
    options; measure, print the summary, record the results with their provenance, and
    render the docs (with ``--no-write``: print what would have been rendered)."""
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--render-only", action="store_true", help="from the results file")
    args = parser.parse_args()
    if args.render_only:
        publication.publish(json.loads(publication.results.read_text(encoding="utf-8")))
        return
    meta = run_meta()
    started = time.perf_counter()
    result = measure(args)
    result["meta"] = {**meta, "seconds": round(time.perf_counter() - started)}
    print(json.dumps(result["summary"], indent=2))
    if args.no_write:  # what would have been written into the docs
        print(publication.render(result))
        return
    publication.results.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    publication.publish(result)
