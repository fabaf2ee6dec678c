"""Calibrate the drift defaults: false alarms on resamples, detection of injected shifts.

Each replicate splits the data at random in two halves: the *reference* (profiled as at
training) and the *held-out* rows, from which a window of ``size`` rows is drawn without
replacement. On that window, unchanged, every drifted feature is a false alarm. The same
window is then shifted in one feature at a time:

- ``mean_shift``: a numeric feature + 0.5 reference std;
- ``new_category``: 20 % of a categorical feature's rows get a level never seen;
- ``nulls``: 20 % of the rows (taken from the non-null ones) of a feature turn null;

and we count how often the shifted feature is declared drifted (detection), how often
the dataset is (``drift_detected``), and false alarms on the other, unshifted features.

Data: the demo churn table (``conveyor.data.synthetic``, 40,000 rows, cleaned like ingest)
and scikit-learn's bundled breast-cancer table (569 rows, 30 numeric features: a small
reference, so the KS-test regime; windows are at most its 285 held-out rows).

Usage: python -m benchmarks.drift_calibration [--replicates 200] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from conveyor.data.schema import TableSchema
from conveyor.monitoring.drift import DriftReport, DriftThresholds, analyze
from conveyor.monitoring.profile import build_profile

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results-drift.json"
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- drift:start -->", "<!-- drift:end -->"
SECTION = "## Drift detection calibration"
NEW_LEVEL = "(never seen)"


@dataclass(frozen=True)
class Dataset:
    """A cleaned table and the features to shift."""

    name: str
    frame: pd.DataFrame
    schema: TableSchema
    sizes: tuple[int, ...]
    shifted: dict[str, str]  # shift -> feature


def churn(rows: int = 40_000, seed: int = 0) -> Dataset:
    """The demo churn table, cleaned as ingest cleans it."""
    from conveyor.config import DataConfig
    from conveyor.data.cleaning import clean_table
    from conveyor.data.synthetic import make_demo_dataset

    raw = make_demo_dataset(rows, seed=seed)
    frame, schema, _ = clean_table(raw, DataConfig(source="demo.csv", target="churned"))
    shifted = {"mean_shift": "monthly_charges", "new_category": "region", "nulls": "income"}
    return Dataset("churn (demo)", frame, schema, (500, 1000, 5000), shifted)


def breast_cancer() -> Dataset:
    """scikit-learn's bundled breast-cancer table (no download)."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.rename(columns=lambda c: str(c).replace(" ", "_"))
    features = tuple(c for c in frame.columns if c != "target")
    schema = TableSchema(target="target", numeric=features)
    shifted = {"mean_shift": "mean_radius", "nulls": "mean_texture"}
    return Dataset("breast_cancer (sklearn)", frame, schema, (200, 280), shifted)


def _shift(
    window: pd.DataFrame, kind: str, feature: str, std: float, rng: np.random.Generator
) -> pd.DataFrame:
    out = window.copy()
    n = len(out)
    if kind == "mean_shift":
        out[feature] = out[feature] + 0.5 * std
    elif kind == "new_category":
        rows = rng.choice(n, size=int(0.2 * n), replace=False)
        values = out[feature].astype(object).to_numpy(copy=True)
        values[rows] = NEW_LEVEL
        out[feature] = pd.Series(values, index=out.index, dtype="str")
    else:
        present = np.flatnonzero(out[feature].notna().to_numpy())
        rows = rng.choice(present, size=min(int(0.2 * n), len(present)), replace=False)
        values = out[feature].to_numpy(dtype=float, copy=True)
        values[rows] = np.nan
        out[feature] = values
    return out


@dataclass
class _Tally:
    """Counts over replicates for one (size, scenario)."""

    windows: int = 0
    dataset_drift: int = 0
    other_alarms: int = 0
    other_checks: int = 0
    detected: int = 0
    strong: int = 0

    def add(self, report: DriftReport, feature: str | None) -> None:
        self.windows += 1
        self.dataset_drift += report.drift_detected
        for item in report.features:
            if item.feature == feature:
                self.detected += item.drifted
                self.strong += item.strong
            else:
                self.other_checks += 1
                self.other_alarms += item.drifted

    def to_dict(self, feature: str | None) -> dict[str, Any]:
        rates = {
            "windows": self.windows,
            "dataset_drift_rate": self.dataset_drift / self.windows,
            "other_features_false_alarm_rate": self.other_alarms / max(self.other_checks, 1),
        }
        if feature is not None:
            rates |= {
                "feature": feature,
                "detection_rate": self.detected / self.windows,
                "strong_rate": self.strong / self.windows,
            }
        return rates


def calibrate(
    data: Dataset,
    *,
    replicates: int,
    seed: int = 0,
    thresholds: DriftThresholds | None = None,
    sizes: tuple[int, ...] | None = None,
) -> dict[str, Any]:
    """False-alarm and detection rates of ``data`` over ``replicates`` random splits.

    Returns:
        ``{"sizes": {size: {"clean": {...}, "<shift>": {...}}}, "per_feature": {...}}``.
    """
    rng = np.random.default_rng(seed)
    sizes = sizes or data.sizes
    tallies = {(s, k): _Tally() for s in sizes for k in ("clean", *data.shifted)}
    per_feature = {(s, f): 0 for s in sizes for f in data.schema.features}
    for _ in range(replicates):
        order = rng.permutation(len(data.frame))
        half = len(order) // 2
        reference, held = data.frame.iloc[order[:half]], data.frame.iloc[order[half:]]
        profile = build_profile(reference, data.schema, task="binary")
        for size in sizes:
            window = held.iloc[rng.choice(len(held), size=size, replace=False)]
            report = analyze(profile, window, thresholds)
            tallies[(size, "clean")].add(report, None)
            for item in report.features:
                per_feature[(size, item.feature)] += item.drifted
            for kind, feature in data.shifted.items():
                numeric = feature in data.schema.numeric
                std = float(reference[feature].std()) if numeric else 0.0
                shifted = _shift(window, kind, feature, std, rng)
                tallies[(size, kind)].add(analyze(profile, shifted, thresholds), feature)
    return {
        "sizes": {
            str(s): {
                k: tallies[(s, k)].to_dict(None if k == "clean" else data.shifted[k])
                for k in ("clean", *data.shifted)
            }
            for s in sizes
        },
        "per_feature_false_alarm_rate": {
            str(s): {f: per_feature[(s, f)] / replicates for f in data.schema.features}
            for s in sizes
        },
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def render(results: dict[str, Any]) -> str:
    """The Markdown block between the drift markers."""
    lines = [
        f"Measured {results['date']} with {results['replicates']} replicates per window size"
        f" ({results['seconds']:.0f} s); defaults: `DriftThresholds()`. Raw numbers:"
        " [benchmarks/results-drift.json](../benchmarks/results-drift.json).",
        "",
        "| data | window rows | clean: dataset drift | clean: per-feature false alarms"
        " (mean / worst feature) | shift | shifted feature detected | strong | dataset drift"
        " | false alarms, other features |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results["datasets"].items():
        for size, scenarios in result["sizes"].items():
            clean = scenarios["clean"]
            worst = max(result["per_feature_false_alarm_rate"][size].values())
            head = (
                f"| {name} | {int(size):,} | {_pct(clean['dataset_drift_rate'])}"
                f" | {_pct(clean['other_features_false_alarm_rate'])} / {_pct(worst)}"
            )
            for kind, s in scenarios.items():
                if kind == "clean":
                    continue
                lines.append(
                    f"{head} | {kind} ({s['feature']}) | {_pct(s['detection_rate'])}"
                    f" | {_pct(s['strong_rate'])} | {_pct(s['dataset_drift_rate'])}"
                    f" | {_pct(s['other_features_false_alarm_rate'])} |"
                )
                head = "| | | | "
    return "\n".join(lines)


def write_doc(block: str) -> None:
    """Put ``block`` between the markers of docs/benchmarks.md (section appended once)."""
    text = DOC.read_text(encoding="utf-8")
    if START not in text:
        intro = (
            f"\n{SECTION}\n\n`python -m benchmarks.drift_calibration` (see its docstring for the"
            " method): false alarms on random held-out windows of the same data, and detection"
            " of injected shifts (mean + 0.5 std, a new category on 20 % of rows, +20 % nulls).\n"
        )
        text = text.rstrip("\n") + "\n" + intro + f"\n{START}\n{END}\n"
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    DOC.write_text(f"{before}{START}\n{block}\n{END}{after}", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    """Run the calibration, print it, write results-drift.json and the doc section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    loaders: tuple[Callable[[], Dataset], ...] = (churn, breast_cancer)
    datasets = {}
    for load in loaders:
        data = load()
        datasets[data.name] = calibrate(data, replicates=args.replicates)
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "replicates": args.replicates,
        "seconds": time.perf_counter() - started,
        "thresholds": DriftThresholds().to_dict(),
        "datasets": datasets,
    }
    block = render(results)
    print(block)
    if not args.no_write:
        RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        write_doc(block)


if __name__ == "__main__":
    main()
