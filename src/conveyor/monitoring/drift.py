"""The per-feature and dataset-level drift decision.

Each feature (and prediction column) of a batch or window is compared with the stored
:class:`~conveyor.monitoring.profile.ReferenceProfile` on the statistics of
:mod:`conveyor.monitoring.statistics` (PSI, Kolmogorov-Smirnov, Wasserstein,
Jensen-Shannon distance, chi-square) and on its **null-rate change**: batch null rate
minus reference null rate.

Decision rules: see :class:`DriftThresholds`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConfigError
from conveyor.monitoring.counting import ColumnCounts, count_frame
from conveyor.monitoring.profile import ColumnProfile, NumericProfile, ReferenceProfile
from conveyor.monitoring.statistics import (
    chi2_pvalue,
    js_distance,
    ks_test,
    proportions,
    psi,
    wasserstein,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DriftReport", "DriftThresholds", "FeatureDrift", "analyze"]


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature, the predictions and the dataset count as drifted.

    A feature is judged only when the batch has at least ``min_rows`` values (nulls
    included for the null rate, non-null for the distribution). Which statistics decide
    depends on the reference's size, as in Evidently's automatic test selection (release
    notes of v0.1.50: statistical tests at 0.95 confidence for <= 1,000 reference rows,
    Wasserstein / Jensen-Shannon with threshold 0.1 above): with large samples a p-value
    flags differences too small to matter, with small ones a distance is mostly noise.
    A feature is *drifted* when any of these holds:

    - reference of more than ``small_reference_rows`` (1,000) non-null values:
      ``psi >= psi`` (0.1; the credit-scoring rule of thumb reads PSI < 0.1 as no
      significant change, 0.1-0.25 as moderate, > 0.25 as significant); numeric
      ``wasserstein >= wasserstein`` (0.1 reference std); categorical
      ``js_distance >= js_distance`` (0.1, base 2: stricter than Evidently's base e);
    - reference of 1,000 values or fewer: numeric ``ks_pvalue < ks_pvalue`` (0.05),
      categorical ``chi2_pvalue < chi2_pvalue`` (0.05). PSI is reported, not decisive:
      over 10 bins its noise floor is ~9 * (1/n + 1/m), 0.077 for 200 vs 284 values;
    - ``abs(null_rate_change) >= null_rate_change`` (0.10, ten percentage points): the
      default of ``validation.null_fraction_tolerance``, Conveyor's own data gate.

    The feature is *strongly* drifted when its distribution drifted and its PSI, less
    PSI's expected value without drift ((bins - 1) * (1/n + 1/m), the chi-square
    approximation: 0.018 for 500 vs 20,000 values), reaches ``psi_strong`` (0.25, the
    "significant" band).

    Dataset: ``drift_share`` = drifted features / features; ``drift_detected`` when
    ``drift_share >= drift_share`` (0.5, the default share of Evidently's dataset drift
    preset) **or** any feature is strongly drifted: one feature moved that far (a new
    category taking a fifth of the rows, a one-std mean shift) changes what the model sees
    enough to retrain, even when the others hold. A null-rate change alone flags the
    feature but never the dataset: a feed that starts sending nulls is fixed upstream (and
    stopped by validation), not by retraining.

    Attributes:
        psi: PSI at which a feature is drifted.
        psi_strong: PSI at which one feature alone makes the dataset drifted.
        wasserstein: normalised Wasserstein distance (large reference).
        js_distance: Jensen-Shannon distance, base 2 (large reference).
        ks_pvalue: KS p-value below which a numeric feature drifted (small reference).
        chi2_pvalue: chi-square p-value below which a categorical one drifted (small ref.).
        null_rate_change: absolute change of the null rate that flags a feature.
        drift_share: share of drifted features that makes the dataset drifted.
        small_reference_rows: up to this many reference values, tests decide, not distances.
        min_rows: below this many batch values nothing is declared drifted (calibrated in
            benchmarks/drift_calibration.py: with fewer, PSI over 10 bins is too noisy).
    """

    psi: float = 0.1
    psi_strong: float = 0.25
    wasserstein: float = 0.1
    js_distance: float = 0.1
    ks_pvalue: float = 0.05
    chi2_pvalue: float = 0.05
    null_rate_change: float = 0.1
    drift_share: float = 0.5
    small_reference_rows: int = 1000
    min_rows: int = 200

    def __post_init__(self) -> None:
        """Check ranges.

        Raises:
            ConfigError: a threshold out of its range.
        """
        for name in ("ks_pvalue", "chi2_pvalue", "drift_share", "null_rate_change"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(f"drift threshold {name} must be in (0, 1]")
        for name in ("psi", "psi_strong", "wasserstein", "js_distance"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"drift threshold {name} must be > 0")
        if self.min_rows < 1 or self.small_reference_rows < 0:
            raise ConfigError("drift thresholds min_rows >= 1 and small_reference_rows >= 0")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


@dataclass(frozen=True)
class FeatureDrift:
    """The drift verdict of one feature (or prediction column).

    Attributes:
        feature: column name.
        kind: ``numeric`` or ``categorical``.
        rows: batch values, nulls included.
        statistics: statistic name -> value (None when not computable).
        drifted: a decisive statistic crossed its threshold.
        strong: PSI crossed ``psi_strong``.
        reason: which statistics crossed, or why none did / it was not judged.
        bins: bin or level labels.
        reference: reference proportion per bin (non-null values).
        current: batch proportion per bin (non-null values).
    """

    feature: str
    kind: str
    rows: int
    statistics: dict[str, float | None]
    drifted: bool
    strong: bool
    reason: str
    bins: tuple[str, ...] = ()
    reference: tuple[float, ...] = ()
    current: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "feature": self.feature,
            "kind": self.kind,
            "rows": self.rows,
            "drifted": self.drifted,
            "strong": self.strong,
            "reason": self.reason,
            "statistics": dict(self.statistics),
            "histogram": {
                "bins": list(self.bins),
                "reference": [round(x, 6) for x in self.reference],
                "current": [round(x, 6) for x in self.current],
            },
        }


@dataclass(frozen=True)
class DriftReport:
    """Drift of one batch or window against the reference.

    Attributes:
        rows: rows analysed.
        features: per-feature verdicts, in the profile's order.
        predictions: verdicts of the prediction columns (empty when none were given).
        drift_share: drifted features / features.
        drift_detected: the dataset-level verdict (see ``DriftThresholds``).
        reason: why the dataset is (not) drifted, one line.
        thresholds: the thresholds applied.
    """

    rows: int
    features: tuple[FeatureDrift, ...]
    predictions: tuple[FeatureDrift, ...]
    drift_share: float
    drift_detected: bool
    reason: str
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)

    @property
    def drifted_features(self) -> list[str]:
        """Names of the drifted features."""
        return [f.feature for f in self.features if f.drifted]

    @property
    def prediction_drift(self) -> bool:
        """Whether any prediction column drifted."""
        return any(p.drifted for p in self.predictions)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (the contract of ``drift.json``)."""
        return {
            "drift_detected": self.drift_detected,
            "drift_share": round(self.drift_share, 6),
            "drifted_features": self.drifted_features,
            "prediction_drift": self.prediction_drift,
            "reason": self.reason,
            "rows": self.rows,
            "thresholds": self.thresholds.to_dict(),
            "features": [f.to_dict() for f in self.features],
            "predictions": [p.to_dict() for p in self.predictions],
        }


# --- decisions -----------------------------------------------------------------------


def _finite(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else round(value, 6)


def _statistics(profile: ColumnProfile, counts: ColumnCounts) -> dict[str, float]:
    import numpy as np

    ref_counts = np.asarray(profile.counts, dtype=np.float64)
    stats = {
        "psi": psi(ref_counts, counts.counts) if counts.counts.sum() else math.nan,
        "null_rate_reference": profile.nulls / profile.rows if profile.rows else math.nan,
        "null_rate_current": counts.nulls / counts.rows if counts.rows else math.nan,
    }
    stats["null_rate_change"] = stats["null_rate_current"] - stats["null_rate_reference"]
    if isinstance(profile, NumericProfile):
        sample = np.asarray(profile.sample, dtype=np.float64)
        current = counts.values if counts.values is not None else np.empty(0)
        present = int(ref_counts.sum())
        stats["ks_statistic"], stats["ks_pvalue"] = ks_test(sample, current, reference_rows=present)
        stats["wasserstein"] = wasserstein(sample, current, scale=profile.stats.get("std", 0.0))
    else:
        stats["js_distance"] = js_distance(ref_counts, counts.counts)
        stats["chi2_pvalue"] = chi2_pvalue(ref_counts, counts.counts)
    return stats


def _crossed(
    stats: dict[str, float], profile: ColumnProfile, t: DriftThresholds, *, distribution: bool
) -> list[str]:
    crossed = []
    change = stats["null_rate_change"]
    if abs(change) >= t.null_rate_change:
        crossed.append(f"null rate {change:+.3f} (|change| >= {t.null_rate_change})")
    if not distribution:
        return crossed
    numeric = isinstance(profile, NumericProfile)
    if sum(profile.counts) <= t.small_reference_rows:  # tests: they know the sample sizes
        if numeric and stats["ks_pvalue"] < t.ks_pvalue:
            crossed.append(f"ks p-value {stats['ks_pvalue']:.2g} < {t.ks_pvalue}")
        if not numeric and stats["chi2_pvalue"] < t.chi2_pvalue:
            crossed.append(f"chi2 p-value {stats['chi2_pvalue']:.2g} < {t.chi2_pvalue}")
        return crossed
    if stats["psi"] >= t.psi:
        crossed.append(f"psi {stats['psi']:.3f} >= {t.psi}")
    if numeric and stats["wasserstein"] >= t.wasserstein:
        crossed.append(f"wasserstein {stats['wasserstein']:.3f} >= {t.wasserstein}")
    if not numeric and stats["js_distance"] >= t.js_distance:
        crossed.append(f"js distance {stats['js_distance']:.3f} >= {t.js_distance}")
    return crossed


def _psi_noise(profile: ColumnProfile, present: int) -> float:
    """PSI's expected value without drift, (bins - 1) * (1/n + 1/m) (chi-square approx.)."""
    reference = sum(profile.counts)
    if present == 0 or reference == 0:
        return 0.0
    return (len(profile.counts) - 1) * (1 / present + 1 / reference)


def _column_drift(
    name: str, profile: ColumnProfile, counts: ColumnCounts, t: DriftThresholds
) -> FeatureDrift:
    stats = _statistics(profile, counts)
    present = int(counts.counts.sum())
    judged = counts.rows >= t.min_rows
    crossed = _crossed(stats, profile, t, distribution=present >= t.min_rows) if judged else []
    distribution_drift = any(not c.startswith("null") for c in crossed)
    strong = distribution_drift and stats["psi"] - _psi_noise(profile, present) >= t.psi_strong
    if not judged:
        reason = f"not judged: {counts.rows} values < min_rows {t.min_rows}"
    else:
        reason = "; ".join(crossed) or "no statistic over its threshold"
    return FeatureDrift(
        feature=name,
        kind=profile.kind,
        rows=counts.rows,
        statistics={k: _finite(v) for k, v in stats.items()},
        drifted=bool(crossed),
        strong=strong,
        reason=reason,
        bins=tuple(profile.bin_labels),
        reference=tuple(float(x) for x in proportions(profile.counts)),
        current=tuple(float(x) for x in proportions(counts.counts)),
    )


def _verdict(
    features: Sequence[FeatureDrift], rows: int, t: DriftThresholds
) -> tuple[float, bool, str]:
    drifted = [f.feature for f in features if f.drifted]
    share = len(drifted) / len(features) if features else 0.0
    strong = [f.feature for f in features if f.strong]
    if rows < t.min_rows:
        return share, False, f"{rows} rows < min_rows {t.min_rows}: too few to judge"
    if share >= t.drift_share:
        return (
            share,
            True,
            f"{len(drifted)} of {len(features)} features drifted (share >= {t.drift_share})",
        )
    if strong:
        return share, True, f"strong drift (psi >= {t.psi_strong}) in {', '.join(strong)}"
    if drifted:
        return (
            share,
            False,
            f"{len(drifted)} of {len(features)} features drifted"
            f" (share < {t.drift_share}, none strongly)",
        )
    return share, False, "no feature drifted"


def analyze(
    profile: ReferenceProfile,
    current: Mapping[str, ColumnCounts] | pd.DataFrame,
    thresholds: DriftThresholds | None = None,
    *,
    predictions: Mapping[str, Any] | None = None,
) -> DriftReport:
    """Compare a batch (or a window's counts) with the reference.

    Args:
        profile: the reference profile stored with the model.
        current: a cleaned batch frame, or column name -> ``ColumnCounts`` (from
            ``DriftWindow.snapshot().columns`` or ``count_frame``).
        thresholds: decision thresholds (default ``DriftThresholds()``).
        predictions: with a frame: the model's outputs on it (``prediction_columns``).

    Returns:
        The drift report.

    Raises:
        DataError: a frame lacks feature columns.

    Example:
        >>> report = analyze(profile, batch)  # doctest: +SKIP
        >>> report.drift_detected, report.drifted_features  # doctest: +SKIP
    """
    t = thresholds or DriftThresholds()
    if not isinstance(current, Mapping):
        current = count_frame(profile, current, predictions=predictions)
    features = tuple(
        _column_drift(name, p, current[name], t)
        for name, p in profile.features.items()
        if name in current
    )
    outputs = tuple(
        _column_drift(name, p, current[name], t)
        for name, p in profile.predictions.items()
        if name in current
    )
    rows = max((f.rows for f in features), default=0)
    share, detected, reason = _verdict(features, rows, t)
    return DriftReport(rows, features, outputs, share, detected, reason, t)
