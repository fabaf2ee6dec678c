"""Small batches and a shared baseline for the GX integration tests."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conveyor.config import ValidationConfig
from conveyor.data.schema import TableSchema
from conveyor.data.validation import validate_batch

ROWS = 200
PLANS = ["basic", "pro", "team"]
REGIONS = ["north", "south", "east", "west"]

Batch = Callable[..., pd.DataFrame]


def make_batch(seed: int = 0, rows: int = ROWS) -> pd.DataFrame:
    """A cleaned churn table: float64 numerics, str categoricals, str target."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.uniform(18, 80, rows),
            "income": rng.normal(50_000, 10_000, rows),
            "plan": pd.Series(rng.choice(PLANS, rows), dtype="str"),
            "region": pd.Series(rng.choice(REGIONS, rows), dtype="str"),
            "churn": pd.Series(rng.choice(["yes", "no"], rows), dtype="str"),
        }
    )


@pytest.fixture(scope="session", autouse=True)
def _quiet_gx() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@pytest.fixture
def schema() -> TableSchema:
    return TableSchema(target="churn", numeric=("age", "income"), categorical=("plan", "region"))


@pytest.fixture
def batch() -> Batch:
    return make_batch


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A baseline suite profiled from seed 0, shared read-only by a module's tests."""
    path = tmp_path_factory.mktemp("baseline") / "baseline.json"
    schema = TableSchema(target="churn", numeric=("age", "income"), categorical=("plan", "region"))
    report = validate_batch(
        make_batch(0), schema, ValidationConfig(), baseline_path=path,
        report_dir=path.parent / "first",
    )  # fmt: skip
    assert report.success and report.baseline_created
    return path
