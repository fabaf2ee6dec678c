"""The promotion gate decides as documented, with one clear line per check."""

from __future__ import annotations

import json
import math

import pytest

from conveyor.config import PromotionConfig
from conveyor.registry.promotion import GateDecision, evaluate_gate

DIRECTIONS = {"roc_auc": True, "f1_macro": True, "rmse": False, "mae": False}


def gate(
    challenger: dict[str, float],
    champion: dict[str, float] | None = None,
    *,
    metric: str = "roc_auc",
    thresholds: dict[str, float] | None = None,
    min_improvement: float = 0.0,
) -> GateDecision:
    config = PromotionConfig(thresholds=thresholds or {}, min_improvement=min_improvement)
    return evaluate_gate(
        metric=metric,
        challenger=challenger,
        champion=champion,
        config=config,
        directions=DIRECTIONS,
    )


def test_first_model_passes_the_champion_check() -> None:
    decision = gate({"roc_auc": 0.7})
    assert decision.passed
    assert decision.champion_score is None
    assert any("first model" in r and r.startswith("ok") for r in decision.reasons)


def test_floor_on_higher_is_better_metric() -> None:
    ok = gate({"roc_auc": 0.85}, thresholds={"roc_auc": 0.8})
    low = gate({"roc_auc": 0.75}, thresholds={"roc_auc": 0.8})
    assert ok.passed
    assert not low.passed
    assert low.failures == ("FAILED: roc_auc 0.7500 < floor 0.8",)


def test_ceiling_on_lower_is_better_metric() -> None:
    ok = gate({"rmse": 9.0}, metric="rmse", thresholds={"rmse": 10})
    high = gate({"rmse": 11.0}, metric="rmse", thresholds={"rmse": 10})
    assert ok.passed
    assert not high.passed
    assert "rmse 11.0000 > ceiling 10" in high.failures[0]


def test_threshold_equal_to_bound_passes() -> None:
    assert gate({"roc_auc": 0.8}, thresholds={"roc_auc": 0.8}).passed
    assert gate({"rmse": 10.0}, metric="rmse", thresholds={"rmse": 10}).passed


def test_threshold_on_metric_not_computed_fails_clearly() -> None:
    decision = gate({"roc_auc": 0.9}, thresholds={"f1_macro": 0.5})
    assert not decision.passed
    assert decision.failures == (
        "FAILED: threshold on 'f1_macro': metric not computed (have: roc_auc)",
    )


def test_threshold_on_metric_of_unknown_direction_fails() -> None:
    decision = gate({"roc_auc": 0.9, "lift": 2.0}, thresholds={"lift": 1.5})
    assert not decision.passed
    assert "unknown whether higher or lower is better" in decision.failures[0]


def test_challenger_must_beat_champion_by_the_margin() -> None:
    enough = gate({"roc_auc": 0.87}, {"roc_auc": 0.85}, min_improvement=0.02)
    short = gate({"roc_auc": 0.86}, {"roc_auc": 0.85}, min_improvement=0.02)
    assert enough.passed, enough.reasons  # 0.87 - 0.85 is 0.0199999... in floats
    assert not short.passed
    assert short.champion_score == 0.85
    assert "improvement +0.0100 < required +0.0200" in short.failures[0]


def test_lower_is_better_margin_counts_a_decrease_as_improvement() -> None:
    better = gate({"rmse": 8.0}, {"rmse": 10.0}, metric="rmse", min_improvement=1.0)
    worse = gate({"rmse": 10.5}, {"rmse": 10.0}, metric="rmse")
    assert better.passed
    assert not worse.passed
    assert "improvement -0.5000" in worse.failures[0]


def test_tie_passes_with_zero_margin_and_fails_with_positive_margin() -> None:
    assert gate({"roc_auc": 0.85}, {"roc_auc": 0.85}).passed
    assert not gate({"roc_auc": 0.85}, {"roc_auc": 0.85}, min_improvement=0.001).passed


def test_nan_challenger_metric_fails() -> None:
    decision = gate({"roc_auc": math.nan}, {"roc_auc": 0.8})
    assert not decision.passed
    assert "FAILED: roc_auc is nan for the challenger" in decision.reasons
    assert math.isnan(decision.challenger_score)


def test_nan_threshold_metric_fails() -> None:
    decision = gate({"roc_auc": 0.9, "f1_macro": math.nan}, thresholds={"f1_macro": 0.5})
    assert not decision.passed
    assert "not a number" in decision.failures[0]


def test_primary_metric_missing_fails() -> None:
    decision = gate({"f1_macro": 0.9}, {"roc_auc": 0.8})
    assert not decision.passed
    assert decision.failures[0] == (
        "FAILED: primary metric 'roc_auc' not computed (have: f1_macro)"
    )


def test_champion_without_the_metric_is_not_compared() -> None:
    decision = gate({"roc_auc": 0.7}, {})
    assert decision.passed
    assert decision.champion_score is None
    assert "comparison skipped" in decision.reasons[-1]


def test_champion_comparison_needs_a_known_direction() -> None:
    decision = evaluate_gate(
        metric="lift",
        challenger={"lift": 2.0},
        champion={"lift": 1.0},
        config=PromotionConfig(),
        directions={},
    )
    assert not decision.passed
    assert "unknown whether higher lift is better" in decision.failures[0]


def test_every_check_gets_a_line_and_all_must_pass() -> None:
    decision = gate(
        {"roc_auc": 0.9, "f1_macro": 0.4},
        {"roc_auc": 0.8},
        thresholds={"roc_auc": 0.85, "f1_macro": 0.5},
    )
    assert len(decision.reasons) == 4  # primary, two thresholds, champion
    assert not decision.passed
    assert [r.split(":")[0] for r in decision.reasons] == ["ok", "FAILED", "ok", "ok"]


@pytest.mark.parametrize("challenger", [{"roc_auc": 0.9}, {"roc_auc": math.nan}])
def test_to_dict_is_json_serialisable(challenger: dict[str, float]) -> None:
    payload = gate(challenger, {"roc_auc": 0.8}).to_dict()
    assert json.loads(json.dumps(payload, allow_nan=False))["metric"] == "roc_auc"
    assert set(payload) == {"passed", "reasons", "challenger_score", "champion_score", "metric"}
