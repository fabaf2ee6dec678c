"""A cleaned demo churn table and its schema, shared by the monitoring unit tests."""

from __future__ import annotations

import pandas as pd
import pytest

from conveyor.config import DataConfig
from conveyor.data.cleaning import clean_table
from conveyor.data.schema import TableSchema
from conveyor.data.synthetic import make_demo_dataset


@pytest.fixture(scope="package")
def churn() -> tuple[pd.DataFrame, TableSchema]:
    raw = make_demo_dataset(12_000, seed=3)
    frame, schema, _ = clean_table(raw, DataConfig(source="demo.csv", target="churned"))
    return frame, schema
