"""Online performance: a model version's metrics on its most recent labelled predictions,
and whether two versions (an A/B split) differ significantly.

Ground truth arrives after the fact (``POST /feedback``); each labelled row joins a bounded
window of the version that answered it. Classifiers: accuracy, and ROC AUC when the
positive-class score is known (binary); regressors: RMSE and MAE.

Significance: accuracy by a two-proportion z-test (pooled); regression by Welch's t-test
on absolute errors. Both are two-sided; ``p < 0.05`` is reported as significant.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_ONLINE_ROWS",
    "SIGNIFICANCE_LEVEL",
    "Comparison",
    "OnlineWindow",
    "compare_windows",
]

DEFAULT_ONLINE_ROWS = 1000
SIGNIFICANCE_LEVEL = 0.05


@dataclass(frozen=True)
class _Labelled:
    truth: Any
    predicted: Any
    score: float | None


class OnlineWindow:
    """The last ``size`` labelled predictions of one model version (thread-safe).

    Args:
        regression: values are numbers compared by error, not labels compared for equality.
        positive: the positive class of a binary classifier (its score is recorded), or None.
        size: labelled rows kept.
    """

    def __init__(
        self, *, regression: bool, positive: Any | None = None, size: int = DEFAULT_ONLINE_ROWS
    ) -> None:
        self.regression = regression
        self.positive = positive
        self._rows: deque[_Labelled] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, truth: Any, predicted: Any, score: float | None = None) -> None:
        """Record one labelled prediction."""
        with self._lock:
            self._rows.append(_Labelled(truth, predicted, score))

    def __len__(self) -> int:
        return len(self._rows)

    def _copy(self) -> list[_Labelled]:
        with self._lock:
            return list(self._rows)

    def outcomes(self) -> list[float]:
        """Per row: 1.0/0.0 correct (classifier) or the absolute error (regressor)."""
        rows = self._copy()
        if self.regression:
            return [abs(float(r.truth) - float(r.predicted)) for r in rows]
        return [1.0 if str(r.truth) == str(r.predicted) else 0.0 for r in rows]

    def metrics(self) -> dict[str, float]:
        """The window's metrics (empty when no row is labelled).

        Example:
            >>> window = OnlineWindow(regression=False)
            >>> for truth, predicted in [("a", "a"), ("b", "a")]:
            ...     window.add(truth, predicted)
            >>> window.metrics()
            {'accuracy': 0.5}
        """
        rows = self._copy()
        if not rows:
            return {}
        if self.regression:
            errors = [float(r.truth) - float(r.predicted) for r in rows]
            return {
                "rmse": math.sqrt(sum(e * e for e in errors) / len(errors)),
                "mae": sum(abs(e) for e in errors) / len(errors),
            }
        found = {"accuracy": sum(str(r.truth) == str(r.predicted) for r in rows) / len(rows)}
        auc = _roc_auc(
            [str(r.truth) == str(self.positive) for r in rows if r.score is not None],
            [float(r.score) for r in rows if r.score is not None],
        )
        if self.positive is not None and auc is not None:
            found["roc_auc"] = auc
        return found


def _roc_auc(positive: list[bool], scores: list[float]) -> float | None:
    """ROC AUC by the rank-sum formula (ties count half); None without both classes."""
    n_pos = sum(positive)
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = sorted(range(len(scores)), key=scores.__getitem__)
    ranks = [0.0] * len(scores)
    start = 0
    while start < len(order):
        stop = start
        while stop + 1 < len(order) and scores[order[stop + 1]] == scores[order[start]]:
            stop += 1
        for k in range(start, stop + 1):
            ranks[order[k]] = (start + stop) / 2 + 1
        start = stop + 1
    rank_sum = sum(r for r, p in zip(ranks, positive, strict=True) if p)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


@dataclass(frozen=True)
class Comparison:
    """Two versions compared on their labelled outcomes.

    Attributes:
        metric: ``accuracy`` (classifiers) or ``mae`` (regressors).
        a: the first version's value. b: the second's.
        rows_a, rows_b: labelled rows behind each.
        p_value: two-sided p-value of "no difference" (None when either side has < 2 rows).
        significant: ``p_value < 0.05``.
        test: the test used.
    """

    metric: str
    a: float | None
    b: float | None
    rows_a: int
    rows_b: int
    p_value: float | None
    significant: bool
    test: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dict(self.__dict__)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def compare_windows(a: OnlineWindow, b: OnlineWindow) -> Comparison:
    """Whether two versions' outcomes differ (accuracy z-test, or Welch's t-test on errors).

    Example:
        >>> a, b = OnlineWindow(regression=False), OnlineWindow(regression=False)
        >>> for i in range(200):
        ...     a.add("x", "x")
        ...     b.add("x", "x" if i % 2 else "y")
        >>> result = compare_windows(a, b)
        >>> (result.a, result.b, result.significant)
        (1.0, 0.5, True)
    """
    from scipy import stats

    x, y = a.outcomes(), b.outcomes()
    metric = "mae" if a.regression else "accuracy"
    mean_x, mean_y = _mean(x), _mean(y)
    if len(x) < 2 or len(y) < 2 or mean_x is None or mean_y is None:
        test = "welch_t" if a.regression else "two_proportion_z"
        return Comparison(metric, mean_x, mean_y, len(x), len(y), None, False, test)
    if a.regression:
        result = stats.ttest_ind(x, y, equal_var=False)
        p = float(result.pvalue)
        test = "welch_t"
    else:
        pooled = (sum(x) + sum(y)) / (len(x) + len(y))
        spread = math.sqrt(pooled * (1 - pooled) * (1 / len(x) + 1 / len(y)))
        z = 0.0 if spread == 0 else (mean_x - mean_y) / spread
        p = float(2 * stats.norm.sf(abs(z)))
        test = "two_proportion_z"
    p = 1.0 if math.isnan(p) else p
    return Comparison(metric, mean_x, mean_y, len(x), len(y), p, p < SIGNIFICANCE_LEVEL, test)
