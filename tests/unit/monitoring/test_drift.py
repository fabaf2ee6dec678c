"""Drift statistics against known values and scipy, and the drift decisions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp, wasserstein_distance

from conveyor.data.schema import TableSchema
from conveyor.errors import ConfigError, DataError
from conveyor.monitoring.drift import DriftThresholds, analyze
from conveyor.monitoring.profile import build_profile
from conveyor.monitoring.statistics import (
    PSI_EPSILON,
    chi2_pvalue,
    js_distance,
    ks_test,
    psi,
    wasserstein,
)


def test_psi_of_identical_distributions_is_zero() -> None:
    assert psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0)


def test_psi_matches_its_formula_and_floors_empty_bins() -> None:
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.5, 0.25])
    pf = np.maximum(p, PSI_EPSILON)
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.25 - pf[2]) * math.log(0.25 / pf[2])
    assert psi(p, q) == pytest.approx(expected)
    assert math.isfinite(psi([1, 0], [0, 1]))


def test_ks_matches_scipy_when_the_sample_is_the_reference() -> None:
    rng = np.random.default_rng(0)
    ref, cur = np.sort(rng.normal(0, 1, 400)), np.sort(rng.normal(0.2, 1, 300))
    expected = ks_2samp(ref, cur)
    statistic, pvalue = ks_test(ref, cur)
    assert statistic == pytest.approx(expected.statistic)
    assert pvalue == pytest.approx(expected.pvalue)


def test_ks_from_a_quantile_sample_uses_the_true_reference_size() -> None:
    rng = np.random.default_rng(1)
    full = np.sort(rng.normal(0, 1, 50_000))
    sample = np.quantile(full, (np.arange(1000) + 0.5) / 1000)
    cur = np.sort(rng.normal(0.1, 1, 2000))
    exact = ks_2samp(full, cur, method="asymp")
    statistic, pvalue = ks_test(sample, cur, reference_rows=len(full))
    assert statistic == pytest.approx(exact.statistic, abs=1e-3)
    assert pvalue == pytest.approx(exact.pvalue, rel=0.2)


def test_wasserstein_is_scipys_divided_by_the_scale() -> None:
    a, b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0])
    assert wasserstein(a, b, scale=2.0) == pytest.approx(wasserstein_distance(a, b) / 2.0)
    assert wasserstein(a, b, scale=0.0) == pytest.approx(1.0 / 1e-3)  # floored std


def test_js_distance_is_zero_for_equal_and_one_for_disjoint() -> None:
    assert js_distance([3, 1], [6, 2]) == pytest.approx(0.0)
    assert js_distance([1, 0], [0, 1]) == pytest.approx(1.0)


def test_chi2_pvalue_is_high_for_equal_and_tiny_for_different_counts() -> None:
    assert chi2_pvalue([100, 200, 300], [10, 20, 30]) == pytest.approx(1.0)
    assert chi2_pvalue([500, 500], [900, 100]) < 1e-6
    assert chi2_pvalue([5, 0], [7, 0]) == 1.0  # a single level: nothing to test


def test_thresholds_reject_values_out_of_range() -> None:
    with pytest.raises(ConfigError, match="ks_pvalue"):
        DriftThresholds(ks_pvalue=0)


def _window(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    return frame.sample(n=rows, random_state=seed)


def test_a_clean_batch_shows_no_drift(churn: tuple[pd.DataFrame, TableSchema]) -> None:
    frame, schema = churn
    profile = build_profile(frame.iloc[:6000], schema, task="binary")
    report = analyze(profile, frame.iloc[6000:7000])
    assert not report.drift_detected
    assert report.drifted_features == []
    assert report.to_dict()["drift_detected"] is False


def test_mean_shift_drifts_that_feature_only(churn: tuple[pd.DataFrame, TableSchema]) -> None:
    frame, schema = churn
    profile = build_profile(frame.iloc[:6000], schema, task="binary")
    batch = frame.iloc[6000:7000].copy()
    batch["age"] = batch["age"] + 0.5 * frame["age"].std()
    report = analyze(profile, batch)
    assert report.drifted_features == ["age"]
    age = report.features[0]
    assert "wasserstein" in age.reason and age.statistics["wasserstein"] > 0.4


def test_new_category_is_strong_drift_and_flags_the_dataset(
    churn: tuple[pd.DataFrame, TableSchema],
) -> None:
    frame, schema = churn
    profile = build_profile(frame.iloc[:6000], schema, task="binary")
    batch = frame.iloc[6000:7000].copy()
    batch.loc[batch.index[:250], "region"] = "atlantis"
    report = analyze(profile, batch)
    region = next(f for f in report.features if f.feature == "region")
    assert region.drifted and region.strong
    assert report.drift_detected and "region" in report.reason


def test_nulls_flag_the_feature_but_not_the_dataset(
    churn: tuple[pd.DataFrame, TableSchema],
) -> None:
    frame, schema = churn
    profile = build_profile(frame.iloc[:6000], schema, task="binary")
    batch = frame.iloc[6000:7000].copy()
    batch.loc[batch.index[:300], "income"] = np.nan
    report = analyze(profile, batch)
    assert report.drifted_features == ["income"]
    assert "null rate" in report.features[1].reason
    assert not report.drift_detected


def test_too_few_rows_are_not_judged(churn: tuple[pd.DataFrame, TableSchema]) -> None:
    frame, schema = churn
    profile = build_profile(frame.iloc[:6000], schema, task="binary")
    batch = frame.iloc[6000:6050].copy()
    batch["age"] = batch["age"] + 100
    report = analyze(profile, batch)
    assert not report.drift_detected and report.drifted_features == []
    assert "min_rows" in report.reason


def test_a_batch_without_a_feature_is_refused(churn: tuple[pd.DataFrame, TableSchema]) -> None:
    frame, schema = churn
    profile = build_profile(frame.iloc[:6000], schema, task="binary")
    with pytest.raises(DataError, match="'plan'"):
        analyze(profile, frame.iloc[6000:7000].drop(columns=["plan"]))


def test_seeded_resamples_rarely_alarm_and_a_mean_shift_is_always_caught(
    churn: tuple[pd.DataFrame, TableSchema],
) -> None:
    """The calibration of benchmarks/drift_calibration.py in miniature (15 replicates)."""
    frame, schema = churn
    rng = np.random.default_rng(2)
    alarms = checks = caught = dataset_alarms = 0
    for _ in range(15):
        order = rng.permutation(len(frame))
        reference, held = frame.iloc[order[:6000]], frame.iloc[order[6000:]]
        profile = build_profile(reference, schema, task="binary")
        window = held.iloc[rng.choice(len(held), 1000, replace=False)]
        clean = analyze(profile, window)
        alarms += len(clean.drifted_features)
        checks += len(clean.features)
        dataset_alarms += clean.drift_detected
        shifted = window.assign(
            tenure_months=window["tenure_months"] + 0.5 * reference["tenure_months"].std()
        )
        caught += "tenure_months" in analyze(profile, shifted).drifted_features
    assert alarms / checks <= 0.03
    assert dataset_alarms == 0
    assert caught == 15
