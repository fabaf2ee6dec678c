"""Calibrate the drift defaults: false alarms on resamples, detection of injected shifts.

Each replicate splits the data at random in two halves: the *reference* (profiled as at
training) and the *held-out* rows, from which a window of ``size`` rows is drawn without
replacement. On that window, unchanged, every drifted feature is a false alarm. The same
window is then shifted in one feature at a time:

- ``mean_shift``: a numeric feature + ``MEAN_SHIFT_STD`` reference standard deviations;
- ``new_category``: a ``SHARE`` of a categorical feature's rows get a level never seen;
- ``nulls``: a ``SHARE`` of the rows (taken from the non-null ones) of a feature turn null;

and we count how often the shifted feature is declared drifted (detection), how often
the dataset is (``drift_detected``), and false alarms on the other, unshifted features.

Data: the demo churn table (``conveyor.data.synthetic``, 40,000 rows, cleaned like ingest)
and scikit-learn's bundled breast-cancer table (569 rows, 30 numeric features: a small
reference, so the KS-test regime; windows are at most its 285 held-out rows).

It is a calibration: the replicates are its repetitions, and there is no baseline to
compare with (``--rounds``, common to the benchmarks, does not apply). ``--replicates 5``
is a quick check of the code, not a result to publish.

    python -m benchmarks.drift_calibration [--replicates 200] [--no-write] [--render-only]

Results: ``benchmarks/results-drift.json`` with its provenance (commit, date, machine, load,
seconds); the table goes into docs/benchmarks.md, a summary into docs/architecture.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import publish
from benchmarks.markers import write_between
from conveyor.data.schema import TableSchema
from conveyor.monitoring.drift import DriftReport, DriftThresholds, analyze
from conveyor.monitoring.profile import build_profile

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results-drift.json"
DOC = ROOT / "docs" / "benchmarks.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
START, END = "<!-- drift:start -->", "<!-- drift:end -->"
SUMMARY_START, SUMMARY_END = "<!-- drift-summary:start -->", "<!-- drift-summary:end -->"
SECTION = "## Drift detection calibration"
NEW_LEVEL = "(never seen)"
MEAN_SHIFT_STD = 0.5
SHARE = 0.2
SEED = 0
SHIFTS = {
    "mean_shift": f"mean + {MEAN_SHIFT_STD} reference std",
    "new_category": f"a level never seen on {SHARE:.0%} of the rows",
    "nulls": f"{SHARE:.0%} of the rows turned null",
}


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
        out[feature] = out[feature] + MEAN_SHIFT_STD * std
    elif kind == "new_category":
        rows = rng.choice(n, size=int(SHARE * n), replace=False)
        values = out[feature].astype(object).to_numpy(copy=True)
        values[rows] = NEW_LEVEL
        out[feature] = pd.Series(values, index=out.index, dtype="str")
    else:
        present = np.flatnonzero(out[feature].notna().to_numpy())
        rows = rng.choice(present, size=min(int(SHARE * n), len(present)), replace=False)
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
        rates: dict[str, Any] = {
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
    every = max(1, replicates // 10)
    for index in range(replicates):
        if (index + 1) % every == 0 or index + 1 == replicates:
            print(f"  {data.name}: replicate {index + 1}/{replicates}", file=sys.stderr)
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


def measure(replicates: int) -> dict[str, Any]:
    """Calibrate on each dataset; the settings, the rates and their summary."""
    if replicates < 1:
        raise SystemExit("--replicates must be at least 1")
    loaders: tuple[Callable[[], Dataset], ...] = (churn, breast_cancer)
    settings: dict[str, Any] = {
        "replicates": replicates,
        "seed": SEED,
        "thresholds": DriftThresholds().to_dict(),
        "shifts": SHIFTS,
        "datasets": {},
    }
    datasets = {}
    for load in loaders:
        data = load()
        print(f"{data.name}: {len(data.frame):,} rows, {replicates} replicates", file=sys.stderr)
        settings["datasets"][data.name] = {
            "rows": len(data.frame),
            "reference_rows": len(data.frame) // 2,
            "features": len(data.schema.features),
            "window_rows": list(data.sizes),
            "shifted": data.shifted,
        }
        datasets[data.name] = calibrate(data, replicates=replicates, seed=SEED)
    return {"settings": settings, "datasets": datasets, "summary": summarize(datasets)}


def summarize(datasets: dict[str, Any]) -> dict[str, Any]:
    """Per dataset and window size: false alarms when clean, detection of each shift."""
    summary: dict[str, Any] = {}
    for name, result in datasets.items():
        sizes = result["sizes"]
        per_feature = result["per_feature_false_alarm_rate"]
        shifts = [kind for kind in next(iter(sizes.values())) if kind != "clean"]
        summary[name] = {
            "clean_dataset_drift_rate": {
                size: s["clean"]["dataset_drift_rate"] for size, s in sizes.items()
            },
            "clean_feature_false_alarm_rate": {
                size: {
                    "mean": s["clean"]["other_features_false_alarm_rate"],
                    "worst": max(per_feature[size].values()),
                }
                for size, s in sizes.items()
            },
            "detection_rate": {
                kind: {size: s[kind]["detection_rate"] for size, s in sizes.items()}
                for kind in shifts
            },
            "shift_dataset_drift_rate": {
                kind: {size: s[kind]["dataset_drift_rate"] for size, s in sizes.items()}
                for kind in shifts
            },
        }
    return summary


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _provenance(result: dict[str, Any]) -> str:
    meta = result["meta"]
    return (
        f"measured {meta['date'][:10]}, {meta['machine'].split(',')[0]}, commit "
        f"{meta['commit'][:10]}, {result['settings']['replicates']} replicates per window "
        f"size"
    )


def render(result: dict[str, Any]) -> str:
    """The Markdown block between the drift markers of docs/benchmarks.md."""
    meta, settings = result["meta"], result["settings"]
    data = "; ".join(
        f"{name}: {d['rows']:,} rows, {d['features']} features, reference "
        f"{d['reference_rows']:,} rows"
        for name, d in settings["datasets"].items()
    )
    shifts = "; ".join(f"`{kind}`: {text}" for kind, text in settings["shifts"].items())
    lines = [
        f"Measured in `benchmarks/results-drift.json` ({meta['date'][:10]}, "
        f"{meta['machine'].split(',')[0]}, commit {meta['commit'][:10]}, load average "
        f"{meta['load_average_start']} at the start, {meta['seconds']:.0f} s); "
        f"{settings['replicates']} replicates per window size (seed {settings['seed']}); "
        "thresholds: `DriftThresholds()` as recorded in the results; `make bench-drift` "
        f"reproduces it. Data: {data}. Shifts: {shifts}.",
        "",
        "| data | window rows | clean: dataset drift | clean: per-feature false alarms"
        " (mean / worst feature) | shift | shifted feature detected | strong | dataset drift"
        " | false alarms, other features |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, calibration in result["datasets"].items():
        for size, scenarios in calibration["sizes"].items():
            clean = scenarios["clean"]
            worst = max(calibration["per_feature_false_alarm_rate"][size].values())
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


def _by_size(rates: dict[str, float]) -> str:
    """``0.0 % of the windows at 500, 1,000 and 5,000 rows``, or one rate per size."""
    values = list(rates.values())
    shown = [_pct(values[0])] if len(set(values)) == 1 else [_pct(v) for v in values]
    sizes = [f"{int(size):,}" for size in rates]
    return f"{publish.listed(shown)} of the windows at {publish.listed(sizes)} rows"


def _range(rates: dict[str, float]) -> str:
    low, high = min(rates.values()), max(rates.values())
    return _pct(low) if low == high else f"{100 * low:.1f}-{_pct(high)}"


def render_summary(result: dict[str, Any]) -> str:
    """The calibration in a few lines for docs/architecture.md, from the same results."""
    shifts = result["settings"]["shifts"]
    lines = [f"  ({_provenance(result)}; the range is over the window sizes.)"]
    for name, s in result["summary"].items():
        mean = {size: rate["mean"] for size, rate in s["clean_feature_false_alarm_rate"].items()}
        shifted = [
            f"{_range(s['detection_rate'][kind])} for {shifts[kind]} (dataset declared "
            f"drifted: {_range(rates)})"
            for kind, rates in s["shift_dataset_drift_rate"].items()
        ]
        lines.append(
            f"  {name}: with no shift, the dataset was declared drifted in "
            f"{_by_size(s['clean_dataset_drift_rate'])}, a feature in {_by_size(mean)} "
            f"(mean over the features). The shifted feature was detected in "
            f"{'; '.join(shifted)}."
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class _Publication(publish.Publication):
    """The table in docs/benchmarks.md, and its summary in docs/architecture.md."""

    def publish(self, result: dict[str, Any]) -> None:
        super().publish(result)
        write_between(ARCHITECTURE, SUMMARY_START, SUMMARY_END, render_summary(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=200)
    publish.main(
        parser,
        lambda args: measure(args.replicates),
        _Publication(RESULTS, (DOC,), START, END, SECTION, render),
    )


if __name__ == "__main__":
    main()
