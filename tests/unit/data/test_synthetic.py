"""The demo dataset: deterministic, realistically messy, drifting on demand, learnable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conveyor.config import DataConfig
from conveyor.data.cleaning import clean_table
from conveyor.data.sources import read_table
from conveyor.data.synthetic import make_demo_dataset, write_demo_dataset
from conveyor.errors import DataError

COLUMNS = [
    "customer_id",
    "signup_date",
    "age",
    "income",
    "tenure_months",
    "monthly_charges",
    "support_calls",
    "plan",
    "region",
    "payment_method",
]


def test_same_seed_gives_the_same_frame_and_another_seed_does_not() -> None:
    first = make_demo_dataset(500, seed=3)

    pd.testing.assert_frame_equal(first, make_demo_dataset(500, seed=3))
    assert not first.equals(make_demo_dataset(500, seed=4))


def test_tidy_frame_has_the_promised_columns_and_types() -> None:
    df = make_demo_dataset(1000, seed=0, messy=False)

    assert list(df.columns) == [*COLUMNS, "churned"]
    assert df["customer_id"].is_unique
    assert set(df["churned"]) == {"yes", "no"}
    assert 0.1 < (df["churned"] == "yes").mean() < 0.4
    assert pd.api.types.is_datetime64_any_dtype(df["signup_date"])
    assert df.isna().sum().sum() == 0


def test_regression_task_has_a_numeric_spend_target() -> None:
    df = make_demo_dataset(300, seed=0, task="regression", messy=False)

    assert df.columns[-1] == "monthly_spend"
    assert df["monthly_spend"].dtype == np.float64
    assert (df["monthly_spend"] >= 0).all()


def test_messy_frame_has_the_promised_mess() -> None:
    df = make_demo_dataset(2000, seed=0)
    stripped = {c.strip(): c for c in df.columns}

    assert [c for c in df.columns if c != c.strip()]  # stray spaces in headers
    income = df[stripped["income"]]
    assert income.dtype == "str"  # a numeric column stored as text
    assert (income == "?").any()
    assert (df[stripped["region"]] == "NA").any()
    assert df[stripped["plan"]].str.startswith(" ").any()
    assert df[stripped["payment_method"]].str.endswith(" ").any()
    assert 0.02 <= df[stripped["age"]].isna().mean() <= 0.05
    assert 0.02 <= (income == "?").mean() <= 0.05
    assert 0 < df["churned"].isna().sum() < 40  # a few unlabelled rows


def test_messy_frame_cleans_back_to_the_tidy_one() -> None:
    messy = make_demo_dataset(1000, seed=5)
    tidy = make_demo_dataset(1000, seed=5, messy=False)

    clean, schema, report = clean_table(messy, DataConfig(source="demo", target="churned"))

    assert schema.numeric == ("age", "income", "tenure_months", "monthly_charges", "support_calls")
    assert schema.categorical == ("plan", "region", "payment_method")
    assert schema.datetime == ("signup_date",)
    assert report.dropped == {"customer_id": "id-like"}
    assert report.coerced_numeric == ("income",)
    kept = tidy[tidy.index.isin(np.flatnonzero(messy["churned"].notna()))].reset_index(drop=True)
    assert set(clean["plan"]) == set(kept["plan"])
    known = clean["income"].notna()
    assert np.allclose(clean.loc[known, "income"], kept.loc[known, "income"])


def test_drift_shifts_distributions_brings_a_new_region_and_more_nulls() -> None:
    base = make_demo_dataset(3000, seed=0)
    drifted = make_demo_dataset(3000, seed=0, drift=1.0)

    assert drifted[" age"].mean() > base[" age"].mean() + 3
    assert drifted["monthly_charges"].mean() > base["monthly_charges"].mean() * 1.1
    assert "central" not in set(base["region "].str.strip())
    assert (drifted["region "].str.strip() == "central").mean() > 0.05
    assert drifted[" age"].isna().mean() > base[" age"].isna().mean() * 1.5


def test_churn_signal_is_learnable_but_not_trivial() -> None:
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    train, _, _ = clean_table(
        make_demo_dataset(3000, seed=1), DataConfig(source="d", target="churned")
    )
    test, schema, _ = clean_table(
        make_demo_dataset(2000, seed=2), DataConfig(source="d", target="churned")
    )
    model = make_pipeline(
        make_column_transformer(
            (make_pipeline(SimpleImputer(), StandardScaler()), list(schema.numeric)),
            (
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                list(schema.categorical),
            ),
        ),
        LogisticRegression(max_iter=500),
    )
    model.fit(train[list(schema.features)], train["churned"] == "yes")

    scores = model.predict_proba(test[list(schema.features)])[:, 1]
    auc = roc_auc_score(test["churned"] == "yes", scores)
    assert 0.75 < auc < 0.95


@pytest.mark.parametrize("name", ["demo.csv", "demo.csv.gz", "demo.parquet"])
def test_written_dataset_reads_back(tmp_path: Path, name: str) -> None:
    path = write_demo_dataset(tmp_path / "sub" / name, n_rows=200, seed=9)

    df = read_table(DataConfig(source=str(path), target="churned"))

    assert len(df) == 200
    assert list(df.columns) == [*COLUMNS, "churned"]


def test_bad_arguments_are_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"\.csv, \.csv\.gz or \.parquet"):
        write_demo_dataset(tmp_path / "demo.xlsx")
    with pytest.raises(DataError, match="n_rows=0"):
        make_demo_dataset(0)
    with pytest.raises(DataError, match="drift=-1"):
        make_demo_dataset(10, drift=-1)
