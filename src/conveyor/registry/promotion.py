"""The promotion gate: may a challenger replace the champion? Pure logic, no MLflow.

Checks, each reported as one human line starting with ``ok:`` or ``FAILED:``:

1. The primary metric was computed for the challenger and is a number (NaN fails).
2. Every absolute threshold in ``PromotionConfig.thresholds`` holds: a floor for a
   higher-is-better metric, a ceiling for a lower-is-better one. A threshold on a metric
   the challenger lacks, or whose direction is unknown, fails.
3. The challenger beats the champion on the primary metric by at least
   ``min_improvement`` (a tie passes when it is 0). With no champion (first model), or a
   champion that has no number for the metric on this data (for example it predates a
   schema change), the check passes and says why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conveyor.config import PromotionConfig

__all__ = ["GateDecision", "evaluate_gate"]

# Metric values are floats computed two ways; a margin this small is rounding, not a loss.
TOLERANCE = 1e-12


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict on one challenger.

    Attributes:
        passed: every check passed.
        reasons: one human line per check, passed (``ok: ...``) or failed (``FAILED: ...``).
        challenger_score: the challenger's primary metric (NaN if missing).
        champion_score: the champion's, or None without a comparable champion.
        metric: the primary metric's name.
    """

    passed: bool
    reasons: tuple[str, ...]
    challenger_score: float
    champion_score: float | None
    metric: str

    @property
    def failures(self) -> tuple[str, ...]:
        """Only the failed checks' lines."""
        return tuple(r for r in self.reasons if r.startswith("FAILED"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (NaN becomes null)."""
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "challenger_score": _json_float(self.challenger_score),
            "champion_score": _json_float(self.champion_score),
            "metric": self.metric,
        }


def _json_float(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def _as_float(value: Any) -> float:
    """``value`` as a float; NaN when it is not a number (None, a string, ...)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _is_number(value: Any) -> bool:
    return not math.isnan(_as_float(value))


def _line(ok: bool, text: str) -> tuple[bool, str]:
    return ok, f"{'ok' if ok else 'FAILED'}: {text}"


def _known(metrics: Mapping[str, float]) -> str:
    return ", ".join(sorted(metrics)) or "none"


def _check_primary(metric: str, challenger: Mapping[str, float]) -> tuple[bool, str]:
    if metric not in challenger:
        return _line(False, f"primary metric {metric!r} not computed (have: {_known(challenger)})")
    value = challenger[metric]
    if not _is_number(value):
        return _line(False, f"{metric} is {value} for the challenger")
    return _line(True, f"{metric} = {value:.4f}")


def _check_threshold(
    name: str, bound: float, challenger: Mapping[str, float], directions: Mapping[str, bool]
) -> tuple[bool, str]:
    if name not in challenger:
        return _line(
            False, f"threshold on {name!r}: metric not computed (have: {_known(challenger)})"
        )
    if name not in directions:
        return _line(False, f"threshold on {name!r}: unknown whether higher or lower is better")
    value = challenger[name]
    if not _is_number(value) or not _is_number(bound):
        return _line(False, f"threshold on {name}: {value} vs bound {bound} is not a number")
    if directions[name]:
        return _line(
            value >= bound, f"{name} {value:.4f} {'>=' if value >= bound else '<'} floor {bound:g}"
        )
    return _line(
        value <= bound, f"{name} {value:.4f} {'<=' if value <= bound else '>'} ceiling {bound:g}"
    )


def _check_champion(
    metric: str,
    score: float,
    champion: Mapping[str, float] | None,
    margin: float,
    higher_is_better: bool | None,
) -> tuple[tuple[bool, str], float | None]:
    if champion is None:
        return _line(True, "no champion yet: first model"), None
    champion_score = champion.get(metric)
    if champion_score is None or not _is_number(champion_score):
        text = f"champion has no {metric} on this data ({champion_score}); comparison skipped"
        return _line(True, text), None
    if higher_is_better is None:
        text = f"cannot compare with the champion: unknown whether higher {metric} is better"
        return _line(False, text), champion_score
    if not _is_number(score):
        return _line(False, f"cannot compare {metric} {score} with the champion"), champion_score
    gain = score - champion_score if higher_is_better else champion_score - score
    ok = gain >= margin - TOLERANCE
    text = (
        f"{metric} {score:.4f} vs champion {champion_score:.4f}: improvement {gain:+.4f}"
        f" {'>=' if ok else '<'} required {margin:+.4f}"
    )
    return _line(ok, text), champion_score


def evaluate_gate(
    *,
    metric: str,
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    config: PromotionConfig,
    directions: Mapping[str, bool],
) -> GateDecision:
    """Decide whether a challenger passes the promotion gate (see the module docstring).

    Args:
        metric: the primary metric, compared with the champion.
        challenger: the challenger's metrics on the held-out set.
        champion: the champion's metrics on the same data, or None if there is none.
        config: thresholds and the required margin.
        directions: metric name -> True when higher is better.

    Returns:
        The decision with one reason line per check.

    Example:
        >>> from conveyor.config import PromotionConfig
        >>> d = evaluate_gate(metric="rmse", challenger={"rmse": 9.0}, champion={"rmse": 10.0},
        ...                   config=PromotionConfig(thresholds={"rmse": 12}),
        ...                   directions={"rmse": False})
        >>> d.passed
        True
    """
    checks = [_check_primary(metric, challenger)]
    for name, bound in sorted(config.thresholds.items()):
        checks.append(_check_threshold(name, bound, challenger, directions))
    score = _as_float(challenger.get(metric))
    champion_check, champion_score = _check_champion(
        metric, score, champion, config.min_improvement, directions.get(metric)
    )
    checks.append(champion_check)
    return GateDecision(
        passed=all(ok for ok, _ in checks),
        reasons=tuple(text for _, text in checks),
        challenger_score=score,
        champion_score=champion_score,
        metric=metric,
    )
