"""Two-sample drift statistics on binned counts and sorted samples.

Pure computations (numpy / scipy, imported lazily); the drift decisions that apply them
to a reference profile live in :mod:`conveyor.monitoring.drift`.

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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "PSI_EPSILON",
    "STD_FLOOR",
    "chi2_pvalue",
    "js_distance",
    "ks_test",
    "proportions",
    "psi",
    "wasserstein",
]

PSI_EPSILON = 1e-4
STD_FLOOR = 1e-3


def proportions(counts: Sequence[float] | npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """Each count's share of the total (the counts as they are when they sum to 0)."""
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

    p = np.maximum(proportions(reference), epsilon)
    q = np.maximum(proportions(current), epsilon)
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
