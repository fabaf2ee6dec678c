"""Drift statistics and the per-feature / dataset-level drift decision.

Statistics (all against the stored :class:`~conveyor.monitoring.profile.ReferenceProfile`):

- **PSI** (population stability index) on the reference's bins / levels (+ other):
  ``sum((q - p) * ln(q / p))``. Empty bins would make it infinite, so proportions are
  floored at ``PSI_EPSILON`` = 1e-4 (0.01 %), as in the widely used ``calculate_psi``
  recipe and Evidently's PSI; an empty reference bin holding 1 % of a batch then adds
  ``0.0099 * ln(100) = 0.046``.
- **Kolmogorov-Smirnov** (numeric): the largest gap between the reference's CDF, read
  from its stored quantile sample, and the batch's empirical CDF; the p-value is
  ``scipy.stats.kstwo.sf(D, round(n*m/(n+m)))`` with the *true* reference size, which is
  what ``scipy.stats.ks_2samp(method="asymp")`` computes.
- **Wasserstein** (numeric): ``scipy.stats.wasserstein_distance`` between the quantile
  sample and the batch, divided by the reference's standard deviation (floored at 0.001),
  like Evidently's ``wasserstein`` test: 0.1 means "the mass moved 0.1 std on average".
- **Jensen-Shannon distance** (categorical): ``scipy.spatial.distance.jensenshannon``
  with base 2, so it lies in [0, 1] (1 for disjoint supports). Evidently uses base e,
  where the same shift reads ``sqrt(ln 2)`` = 0.83 times smaller.
- **chi-square** (categorical): p-value of ``scipy.stats.chi2_contingency`` on the 2 x k
  table of reference and batch counts (both are samples).
- **null-rate change**: batch null rate minus reference null rate.

Decision rules: see :class:`DriftThresholds`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConfigError
from conveyor.monitoring.profile import (
    ColumnCounts,
    ColumnProfile,
    NumericProfile,
    ReferenceProfile,
    count_frame,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

__all__ = [
    "PSI_EPSILON",
    "DriftReport",
    "DriftThresholds",
    "FeatureDrift",
    "analyze",
    "chi2_pvalue",
    "js_distance",
    "ks_test",
    "psi",
    "wasserstein",
]

PSI_EPSILON = 1e-4
STD_FLOOR = 1e-3


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


# --- statistics ----------------------------------------------------------------------


def _proportions(counts: Sequence[float] | npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    import numpy as np

    array = np.asarray(counts, dtype=np.float64)
    total = array.sum()
    return array / total if total > 0 else array


def psi(
    reference: Sequence[float] | npt.NDArray[Any],
    current: Sequence[float] | npt.NDArray[Any],
    *,
    epsilon: float = PSI_EPSILON,
) -> float:
    """Population stability index of two binned distributions.

    Args:
        reference: reference counts (or proportions) per bin.
        current: batch counts (or proportions) per bin, same bins.
        epsilon: floor of each proportion, so empty bins stay finite.

    Returns:
        PSI (0 for identical distributions; natural log).
    """
    import numpy as np

    p = np.maximum(_proportions(reference), epsilon)
    q = np.maximum(_proportions(current), epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def ks_test(
    reference_sample: npt.NDArray[np.float64],
    current: npt.NDArray[np.float64],
    *,
    reference_rows: int | None = None,
) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and asymptotic p-value.

    Args:
        reference_sample: sorted reference values or quantile sample.
        current: sorted batch values (non-null).
        reference_rows: how many values the sample stands for (default: its length).

    Returns:
        ``(statistic, pvalue)``; ``(nan, nan)`` when either side is empty. When the sample
        is the whole reference this is ``scipy.stats.ks_2samp`` (exact p-value for small
        samples); for a quantile sample, its asymptotic p-value with the true size.
    """
    import numpy as np
    from scipy.stats import ks_2samp, kstwo

    m, n = len(reference_sample), len(current)
    if m == 0 or n == 0:
        return math.nan, math.nan
    if reference_rows is None or reference_rows == m:  # the sample is the reference itself
        result = ks_2samp(reference_sample, current)
        return float(result.statistic), float(result.pvalue)
    points = np.concatenate([reference_sample, current])
    cdf_ref = np.searchsorted(reference_sample, points, side="right") / m
    cdf_cur = np.searchsorted(current, points, side="right") / n
    statistic = float(np.max(np.abs(cdf_ref - cdf_cur)))
    big, small = sorted([float(reference_rows), float(n)], reverse=True)
    effective = round(big * small / (big + small))
    return statistic, float(np.clip(kstwo.sf(statistic, effective), 0.0, 1.0))


def wasserstein(
    reference_sample: npt.NDArray[np.float64],
    current: npt.NDArray[np.float64],
    *,
    scale: float,
) -> float:
    """Wasserstein-1 distance divided by ``scale`` (the reference's std, floored at 0.001).

    Returns:
        The normalised distance; nan when either side is empty.
    """
    from scipy.stats import wasserstein_distance

    if len(reference_sample) == 0 or len(current) == 0:
        return math.nan
    distance = float(wasserstein_distance(reference_sample, current))
    return distance / max(scale, STD_FLOOR)


def js_distance(
    reference: Sequence[float] | npt.NDArray[Any], current: Sequence[float] | npt.NDArray[Any]
) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of two binned distributions.

    Returns:
        0 for identical, 1 for disjoint distributions; nan when either is empty.
    """
    import numpy as np
    from scipy.spatial.distance import jensenshannon

    p, q = np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        return math.nan
    return float(jensenshannon(p, q, base=2))


def chi2_pvalue(
    reference: Sequence[float] | npt.NDArray[Any], current: Sequence[float] | npt.NDArray[Any]
) -> float:
    """p-value of the chi-square test of homogeneity of two count vectors.

    Returns:
        The p-value (1.0 when fewer than two levels occur at all).
    """
    import numpy as np
    from scipy.stats import chi2_contingency

    table = np.vstack([np.asarray(reference, float), np.asarray(current, float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    return float(chi2_contingency(table, correction=False).pvalue)


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
        reference=tuple(float(x) for x in _proportions(profile.counts)),
        current=tuple(float(x) for x in _proportions(counts.counts)),
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
