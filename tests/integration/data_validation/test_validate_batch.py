"""validate_batch with real Great Expectations: baseline creation and drift failures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conveyor.config import ValidationConfig
from conveyor.data.schema import TableSchema
from conveyor.data.validation import ValidationReport, validate_batch
from conveyor.errors import DataError

from .conftest import Batch

pytestmark = pytest.mark.integration


def _check(
    df: object, schema: TableSchema, baseline: Path, tmp_path: Path, **config: object
) -> ValidationReport:
    return validate_batch(
        df,  # type: ignore[arg-type]
        schema,
        ValidationConfig.model_validate(config),
        baseline_path=baseline,
        report_dir=tmp_path / "report",
    )


def _failed_columns(report: ValidationReport) -> dict[str | None, str]:
    return {f.column: f.expectation for f in report.failures}


def test_first_batch_passes_and_saves_a_gx_suite(
    batch: Batch, schema: TableSchema, tmp_path: Path
) -> None:
    import great_expectations as gx

    path = tmp_path / "nested" / "baseline.json"
    report = _check(batch(0), schema, path, tmp_path)
    assert report.success and report.baseline_created and report.failures == ()
    assert report.rows == 200 and report.evaluated > 0
    data = json.loads(path.read_text())
    suite = gx.ExpectationSuite(**data)
    types = {e.expectation_type for e in suite.expectations}
    assert {"expect_column_values_to_be_in_set", "expect_column_values_to_be_between"} <= types
    columns = {c["name"]: c for c in suite.meta["conveyor_profile"]["columns"]}
    assert columns["plan"]["categories"] == ["basic", "pro", "team"]
    assert 18 <= columns["age"]["min"] < columns["age"]["max"] <= 80
    assert Path(str(report.report_path)).is_file()


def test_same_distribution_passes_against_the_baseline(
    batch: Batch, schema: TableSchema, baseline: Path, tmp_path: Path
) -> None:
    before = baseline.read_text()
    report = _check(batch(1), schema, baseline, tmp_path)
    assert report.success, [f.line() for f in report.failures]
    assert not report.baseline_created
    assert baseline.read_text() == before


def test_missing_column_fails(
    batch: Batch, schema: TableSchema, baseline: Path, tmp_path: Path
) -> None:
    report = _check(batch(1).drop(columns=["region"]), schema, baseline, tmp_path)
    assert not report.success
    assert _failed_columns(report) == {"region": "expect_column_to_exist"}
    assert report.failures[0].line() == "column 'region': missing (the baseline has it)"


def test_type_change_fails_with_example_values(
    batch: Batch, schema: TableSchema, baseline: Path, tmp_path: Path
) -> None:
    df = batch(1)
    df["age"] = df["age"].round().astype(int).astype("str")
    report = _check(df, schema, baseline, tmp_path)
    assert _failed_columns(report) == {"age": "expect_column_values_to_be_of_type"}
    failure = report.failures[0]
    assert "from float64 to str" in failure.detail
    assert len(failure.examples) == 5 and all(e.startswith("'") for e in failure.examples)


def test_unseen_categories_fail_with_the_unseen_values(
    batch: Batch, schema: TableSchema, baseline: Path, tmp_path: Path
) -> None:
    df = batch(1)
    df.loc[:59, "plan"] = "platinum"  # 30% of 200 rows
    report = _check(df, schema, baseline, tmp_path)
    assert _failed_columns(report) == {"plan": "expect_column_values_to_be_in_set"}
    line = report.failures[0].line()
    assert line == "column 'plan': 30% of values not in the baseline set (max 5%); e.g. 'platinum'"


def test_values_far_out_of_range_fail(
    batch: Batch, schema: TableSchema, baseline: Path, tmp_path: Path
) -> None:
    df = batch(1)
    df.loc[:9, "income"] = 1e9
    df.loc[10:11, "income"] = -5e8
    report = _check(df, schema, baseline, tmp_path)
    assert _failed_columns(report) == {"income": "expect_column_values_to_be_between"}
    failure = report.failures[0]
    assert failure.detail.startswith("6% of values outside [")
    assert failure.examples == ("1e+09", "-5e+08")


def test_null_surge_fails(
    batch: Batch, schema: TableSchema, baseline: Path, tmp_path: Path
) -> None:
    df = batch(1)
    df.loc[:99, "region"] = np.nan
    report = _check(df, schema, baseline, tmp_path)
    assert _failed_columns(report) == {"region": "expect_column_values_to_not_be_null"}
    assert report.failures[0].line() == "column 'region': 50% null (max 10%: baseline 0% + 10%)"


def test_new_thresholds_change_the_verdict_on_the_same_baseline(
    batch: Batch, schema: TableSchema, baseline: Path, tmp_path: Path
) -> None:
    df = batch(1)
    df.loc[:59, "plan"] = "platinum"
    df.loc[:99, "region"] = np.nan
    strict = _check(df, schema, baseline, tmp_path)
    lenient = _check(
        df, schema, baseline, tmp_path,
        max_unseen_category_fraction=0.35, null_fraction_tolerance=0.6,
    )  # fmt: skip
    assert set(_failed_columns(strict)) == {"plan", "region"}
    assert lenient.success, [f.line() for f in lenient.failures]


def test_html_report_names_the_failing_column(
    batch: Batch, schema: TableSchema, baseline: Path, tmp_path: Path
) -> None:
    df = batch(1)
    df.loc[:59, "plan"] = "platinum"
    report = _check(df, schema, baseline, tmp_path)
    page = Path(str(report.report_path)).read_text()
    assert "failed" in page and "plan" in page and "platinum" in page
    assert "http://" not in page and "https://" not in page  # self-contained
    assert (tmp_path / "report" / "gx-validation-result.json").is_file()
    assert (tmp_path / "report" / "gx-data-docs.html").is_file()


def test_batch_failing_config_checks_creates_no_baseline(
    batch: Batch, schema: TableSchema, tmp_path: Path
) -> None:
    df = batch(0, rows=20)
    df.loc[:2, "churn"] = np.nan
    path = tmp_path / "baseline.json"
    report = _check(df, schema, path, tmp_path)
    assert not report.success and not report.baseline_created
    assert not path.exists()
    lines = [f.line() for f in report.failures]
    assert "table: 20 rows (min 50)" in lines
    assert "column 'churn': 3 target values are null (none allowed)" in lines


def test_missing_target_fails_the_config_checks(
    batch: Batch, schema: TableSchema, tmp_path: Path
) -> None:
    report = _check(batch(0).drop(columns=["churn"]), schema, tmp_path / "b.json", tmp_path)
    assert _failed_columns(report) == {"churn": "expect_column_to_exist"}


def test_update_baseline_rewrites_it_from_the_batch(
    batch: Batch, schema: TableSchema, baseline: Path, tmp_path: Path
) -> None:
    own = tmp_path / "baseline.json"
    own.write_text(baseline.read_text())
    shifted = batch(1)
    shifted["plan"] = "enterprise"
    assert not _check(shifted, schema, own, tmp_path).success
    rebuilt = _check(shifted, schema, own, tmp_path, update_baseline=True)
    assert rebuilt.success and rebuilt.baseline_created
    assert _check(shifted, schema, own, tmp_path).success


def test_corrupt_baseline_raises_naming_the_path(
    batch: Batch, schema: TableSchema, tmp_path: Path
) -> None:
    path = tmp_path / "baseline.json"
    path.write_text("{not json")
    with pytest.raises(DataError, match=str(path)):
        _check(batch(0), schema, path, tmp_path)
