"""Pure parts of data validation: threshold math, failure lines, report round-trips."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from conveyor.data.schema import TableSchema
from conveyor.data.validation import ExpectationFailure, ValidationReport
from conveyor.data.validation._html import ReportRow, render_report_html
from conveyor.data.validation._outcome import outcome
from conveyor.data.validation._profile import (
    ColumnProfile,
    allowed_null_fraction,
    mostly,
    profile_frame,
    widened_range,
)


def test_mostly_keeps_a_fraction_exactly_on_the_limit_passing() -> None:
    # 5 nulls in 100 rows with a 5% allowance: GX compares 0.95 >= mostly.
    assert mostly(0.05) <= 0.95
    assert mostly(0.05) > 0.9499
    assert mostly(0.0) == pytest.approx(1.0)
    assert mostly(1.0) == 0.0


def test_allowed_null_fraction_adds_the_tolerance_and_caps_at_one() -> None:
    assert allowed_null_fraction(0.02, 0.10) == pytest.approx(0.12)
    assert allowed_null_fraction(0.95, 0.10) == 1.0


def test_widened_range_grows_by_the_tolerance_times_the_width() -> None:
    assert widened_range(0.0, 10.0, 0.5) == (-5.0, 15.0)
    assert widened_range(0.0, 10.0, 0.0) == (0.0, 10.0)


def test_widened_range_of_a_constant_column_is_not_a_point() -> None:
    low, high = widened_range(3.0, 3.0, 0.5)
    assert low < 3.0 < high


def test_failure_line_names_the_column_detail_and_examples() -> None:
    failure = ExpectationFailure(
        "plan",
        "expect_column_values_to_be_in_set",
        "12.5% of values not in the baseline set (max 5%)",
        ("'platinum'", "'gold '"),
    )
    assert failure.line() == (
        "column 'plan': 12.5% of values not in the baseline set (max 5%); e.g. 'platinum', 'gold '"
    )


def test_failure_line_for_a_table_check_has_no_column() -> None:
    failure = ExpectationFailure(None, "expect_table_row_count_to_be_between", "12 rows (min 50)")
    assert failure.line() == "table: 12 rows (min 50)"


def test_report_round_trips_through_json() -> None:
    report = ValidationReport(
        success=False,
        evaluated=7,
        failures=(ExpectationFailure("age", "expect_column_values_to_be_of_type", "x", ("'a'",)),),
        baseline_created=False,
        baseline_path="/p/baseline.json",
        report_path="/r/validation-report.html",
        rows=120,
    )
    again = ValidationReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report


def test_column_profile_round_trips_and_rejects_unknown_kinds() -> None:
    profile = ColumnProfile("plan", "categorical", "str", 0.1, categories=("basic", "pro"))
    assert ColumnProfile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile
    with pytest.raises(ValueError, match="unknown column kind"):
        ColumnProfile.from_dict({**profile.to_dict(), "kind": "blob"})


def test_profile_frame_records_ranges_nulls_and_category_sets() -> None:
    df = pd.DataFrame(
        {
            "age": [20.0, 30.0, None, 40.0],
            "plan": pd.Series(["pro", "basic", "pro", None], dtype="str"),
            "y": pd.Series(["a", "b", "a", "b"], dtype="str"),
        }
    )
    schema = TableSchema(target="y", numeric=("age",), categorical=("plan",))
    age, plan, target = profile_frame(df, schema)
    assert (age.kind, age.dtype, age.minimum, age.maximum) == ("numeric", "float64", 20.0, 40.0)
    assert age.null_fraction == pytest.approx(0.25)
    assert (plan.kind, plan.dtype, plan.categories) == ("categorical", "str", ("basic", "pro"))
    assert target.categories == ("a", "b")


def _result(
    check: str, *, success: bool, column: str | None, stats: dict[str, Any], **meta: Any
) -> Any:
    config = SimpleNamespace(
        type="expect_x", kwargs={"column": column}, meta={"conveyor_check": check, **meta}
    )
    return SimpleNamespace(
        expectation_config=config, success=success, result=stats, exception_info={}
    )


def test_outcome_phrases_unseen_categories_with_deduplicated_examples() -> None:
    stats = {"unexpected_percent": 30.0, "partial_unexpected_list": ["gold", "gold", "x", "y"]}
    got = outcome(
        _result("categories", success=False, column="plan", stats=stats, limit=0.05),
        pd.DataFrame(),
    )
    assert not got.success
    assert got.failure.line() == (
        "column 'plan': 30% of values not in the baseline set (max 5%); e.g. 'gold', 'x', 'y'"
    )


def test_outcome_phrases_a_null_surge_against_the_baseline() -> None:
    stats = {"unexpected_percent": 50.0, "partial_unexpected_list": [None]}
    result = _result(
        "baseline_nulls", success=False, column="region", stats=stats,
        limit=0.12, baseline=0.02, tolerance=0.1,
    )  # fmt: skip
    line = outcome(result, pd.DataFrame()).failure.line()
    assert line == "column 'region': 50% null (max 12%: baseline 2% + 10%)"


def test_outcome_of_a_type_change_shows_values_from_the_batch() -> None:
    df = pd.DataFrame({"age": ["x1", "x2", "x1"]})
    result = _result("type", success=False, column="age", stats={"observed_value": "str"},
                     expected="float64")  # fmt: skip
    failure = outcome(result, df).failure
    assert failure.detail == "type changed from float64 to str"
    assert failure.examples == ("'x1'", "'x2'")


def test_outcome_of_an_expectation_that_raised_says_so() -> None:
    result = _result("range", success=False, column="age", stats={})
    result.exception_info = {"exception_message": "boom"}
    assert outcome(result, pd.DataFrame()).failure.detail == "could not be evaluated: boom"


def test_html_report_lists_failures_first_and_escapes_values() -> None:
    rows = [
        ReportRow(True, "age", "expect_column_to_exist", "present", ()),
        ReportRow(False, "plan", "expect_column_values_to_be_in_set", "30% unseen", ("'<b>'",)),
    ]
    page = render_report_html(
        success=False, rows=rows, batch_rows=10, baseline_path="/b.json", baseline_note="checked"
    )
    assert "failed" in page
    assert page.index("<h2>Failures</h2>") < page.index("<h2>All expectations</h2>")
    assert "&#x27;&lt;b&gt;&#x27;" in page
    assert "'<b>'" not in page
