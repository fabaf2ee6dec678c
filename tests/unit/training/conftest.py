"""Synthetic tables for the training tests: numeric + categorical features, three targets.

Also a messy table (awkward names, missing values, unseen levels) and models fitted on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conveyor.config import ModelSpec
from conveyor.data.schema import TableSchema, Task
from conveyor.training.train import train_model

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


# -- a messy table: for the permutation importance equivalence tests --------------------
MESSY_NUMERIC = ("age-years", "monthly charge", "n.calls", "score (raw)")
MESSY_CATEGORICAL = ("plan.type", "region name")
MESSY_TARGETS = {"binary": "churned", "multiclass": "tier", "regression": "spend"}
MESSY_METRIC = {"binary": "roc_auc", "multiclass": "f1_macro", "regression": "rmse"}


def _messy_table(rows: int, *, seed: int, unseen: bool) -> pd.DataFrame:
    """Names with hyphens, spaces, dots; missing values; integers; numbers as text."""
    rng = np.random.default_rng(seed)
    age, calls = rng.integers(18, 80, size=rows), rng.poisson(1.5, size=rows)
    charge = rng.normal(60, 20, size=rows).round(2)
    plan = np.array(["basic", "plus", "pro", "legacy"])[
        rng.choice(4, size=rows, p=[0.5, 0.3, 0.185, 0.015])  # "legacy": a rare level
    ]
    region = rng.choice(["north", "south", "east", "west"], size=rows).astype(object)
    if unseen:
        plan[::17], region[::23] = "enterprise", "offshore"
    logit = 0.04 * (age - 45) + 0.8 * (calls - 1.5) + np.where(plan == "basic", 1.0, -0.5)
    spend = charge * (1 + 0.1 * calls) + rng.normal(scale=5, size=rows)
    frame = pd.DataFrame(
        {
            "age-years": age,
            "monthly charge": charge,
            "n.calls": calls,
            "score (raw)": pd.Series(rng.normal(size=rows).round(3).astype(str), dtype=object),
            "plan.type": pd.Series(plan, dtype="str"),
            "region name": region,
            "churned": np.where(logit + rng.normal(size=rows) > 0, "yes", "no"),
            "tier": np.select([spend < 55, spend < 80], ["low", "mid"], "high"),
            "spend": spend,
        }
    )
    frame.loc[frame.index % 7 == 0, "monthly charge"] = np.nan
    frame.loc[frame.index % 11 == 0, "plan.type"] = np.nan
    frame.loc[frame.index % 13 == 0, "score (raw)"] = "?"
    frame.loc[frame.index % 19 == 0, "region name"] = None
    return frame


@pytest.fixture(scope="session")
def messy_schemas() -> dict[str, TableSchema]:
    """The messy table's schema for each task (keyed by task)."""
    return {
        task: TableSchema(target=target, numeric=MESSY_NUMERIC, categorical=MESSY_CATEGORICAL)
        for task, target in MESSY_TARGETS.items()
    }


@pytest.fixture(scope="session")
def messy_holdout() -> pd.DataFrame:
    """300 held-out messy rows, some with plan and region levels training never saw."""
    return _messy_table(300, seed=2, unseen=True)


@pytest.fixture(scope="session")
def messy_model(messy_schemas: dict[str, TableSchema]) -> Callable[[Task, str], Any]:
    """Fit (once per session) a Conveyor pipeline of a model type on 600 messy rows."""
    fitted: dict[tuple[str, str], Any] = {}
    params = {
        "lightgbm": {"n_estimators": 40, "verbose": -1},
        "random_forest": {"n_estimators": 20},
    }

    def model(task: Task, kind: str) -> Any:
        if (task, kind) not in fitted:
            fitted[task, kind] = train_model(
                _messy_table(600, seed=1, unseen=False),
                schema=messy_schemas[task],
                task=task,
                models=[ModelSpec(type=kind, params=params.get(kind, {}))],
                metric=MESSY_METRIC[task],
                seed=0,
            ).pipeline
        return fitted[task, kind]

    return model
