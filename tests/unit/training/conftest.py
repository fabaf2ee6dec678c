"""Synthetic tables for the training tests: numeric + categorical features, three targets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conveyor.data.schema import TableSchema

ROWS = 400
TORCH_MISSING = "optional extra conveyor-mlops[torch] is not installed"


def _table(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2, x3 = rng.normal(size=rows), rng.normal(size=rows), rng.uniform(0, 10, rows)
    colour = rng.choice(["red", "green", "blue", "violet"], size=rows, p=[0.4, 0.3, 0.28, 0.02])
    shape = rng.choice(["square", "circle"], size=rows)
    logit = 1.8 * x1 - 1.2 * x2 + np.where(colour == "red", 1.5, -0.5)
    binary = np.where(logit + rng.normal(scale=0.5, size=rows) > 0, "yes", "no")
    score = x1 + np.where(shape == "circle", 1.0, -1.0) + rng.normal(scale=0.3, size=rows)
    multiclass = np.select([score < -0.7, score < 0.7], ["low", "mid"], "high")
    value = 3.0 * x1 - 2.0 * x2 + 0.5 * x3 + np.where(colour == "blue", 4.0, 0.0)
    frame = pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "x3": x3,
            "colour": pd.Series(colour, dtype="str"),
            "shape": pd.Series(shape, dtype="str"),
            "binary": pd.Series(binary, dtype="str"),
            "multiclass": pd.Series(multiclass, dtype="str"),
            "value": value + rng.normal(scale=0.5, size=rows),
        }
    )
    frame.loc[frame.index % 11 == 0, "x2"] = np.nan
    frame.loc[frame.index % 13 == 0, "colour"] = np.nan
    return frame


@pytest.fixture
def needs_torch() -> None:
    """Skip a test of the torch MLP when the optional extra is absent."""
    pytest.importorskip("torch", reason=TORCH_MISSING)


@pytest.fixture(scope="session")
def table() -> pd.DataFrame:
    """400 training rows."""
    return _table(ROWS, seed=1)


@pytest.fixture(scope="session")
def holdout() -> pd.DataFrame:
    """200 held-out rows from the same distribution, one with an unseen colour."""
    frame = _table(200, seed=2)
    frame.loc[0, "colour"] = "ultraviolet"
    return frame


TARGETS = {"binary": "binary", "multiclass": "multiclass", "regression": "value"}


@pytest.fixture(scope="session")
def schemas() -> dict[str, TableSchema]:
    """The synthetic table's schema for each task (keyed by task)."""
    return {
        task: TableSchema(
            target=target, numeric=("x1", "x2", "x3"), categorical=("colour", "shape")
        )
        for task, target in TARGETS.items()
    }
