"""A seeded, realistic demo table (customer churn) with optional mess and drift.

The target depends on a known signal (support calls, tenure, charges, payment method,
plan, age) plus noise, so a decent model reaches a ROC AUC around 0.8-0.9, not 1.0.
``messy=True`` adds what real exports contain: stray spaces in headers and values,
``"?"``/``"NA"`` markers, a numeric column stored as text, a few percent missing values and
a handful of rows without a target. ``drift`` shifts the distributions for drift demos.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from conveyor.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

__all__ = ["make_demo_dataset", "write_demo_dataset"]

PLANS = ("basic", "standard", "premium")
REGIONS = ("north", "south", "east", "west")
NEW_REGION = "central"  # appears only under drift
PAYMENT_METHODS = ("credit_card", "bank_transfer", "electronic_check", "mailed_check")
_REFERENCE_DATE = "2025-01-01"
# Headers a messy export mangles: name -> name with stray spaces.
_MESSY_HEADERS = {"age": " age", "income": "income ", "plan": " plan ", "region": "region "}


def make_demo_dataset(
    n_rows: int = 5000,
    *,
    seed: int = 0,
    task: Literal["binary", "regression"] = "binary",
    drift: float = 0.0,
    messy: bool = True,
) -> pd.DataFrame:
    """A customer table whose target ("churned" or "monthly_spend") is learnable.

    Args:
        n_rows: number of customers.
        seed: same seed, same frame.
        task: ``"binary"`` for the "churned" ("yes"/"no") target, ``"regression"`` for
            "monthly_spend".
        drift: 0 for the reference distribution; larger values shift ages, charges and
            support calls, bring a new region ("central") and more missing values.
        messy: add real-world mess (see the module docstring).

    Returns:
        Columns customer_id, signup_date, age, income, tenure_months, monthly_charges,
        support_calls, plan, region, payment_method and the target.

    Raises:
        DataError: ``n_rows`` < 1, ``drift`` < 0 or an unknown task.

    Example:
        >>> df = make_demo_dataset(1000, seed=1, messy=False)
        >>> sorted(df["churned"].unique())
        ['no', 'yes']
    """
    import numpy as np

    if n_rows < 1 or drift < 0 or task not in ("binary", "regression"):
        raise DataError(
            f"demo dataset needs n_rows >= 1, drift >= 0 and task binary or regression"
            f" (got n_rows={n_rows}, drift={drift}, task={task!r})"
        )
    rng = np.random.default_rng(seed)
    df = _customers(rng, n_rows, drift)
    if task == "binary":
        df["churned"] = _churn(rng, df)
    else:
        df["monthly_spend"] = _spend(rng, df)
    if messy:
        df = _make_messy(rng, df, target=str(df.columns[-1]), drift=drift)
    return df


def write_demo_dataset(path: Path, **kwargs: Any) -> Path:
    """Write ``make_demo_dataset(**kwargs)`` to a .csv (optionally .gz) or .parquet file.

    Args:
        path: destination; its suffix picks the format. Parent folders are created.
        **kwargs: passed to ``make_demo_dataset``.

    Returns:
        The path written.

    Raises:
        DataError: the suffix is neither .csv, .csv.gz, .parquet nor .pq.
    """
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] not in ([".csv"], [".parquet"], [".pq"]) and suffixes[-2:] != [
        ".csv",
        ".gz",
    ]:
        raise DataError(f"demo dataset path must end in .csv, .csv.gz or .parquet: {path}")
    df = make_demo_dataset(**kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffixes[-1] in (".parquet", ".pq"):
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path


def _customers(rng: np.random.Generator, n: int, drift: float) -> pd.DataFrame:
    """The features, before any mess; drift shifts means and brings a new region."""
    import numpy as np
    import pandas as pd

    ids = np.char.add("C", (rng.permutation(n) + 10_000_000).astype("U8"))
    age = np.clip(rng.normal(42 + 6 * drift, 13, n), 18, 90).round()
    income = np.round(rng.lognormal(np.log(55_000), 0.45, n), -2)
    tenure = np.clip(rng.gamma(2.0, 14.0, n), 0, 120).astype("int64")
    plan = np.array(PLANS)[rng.choice(len(PLANS), n, p=[0.5, 0.3, 0.2])]
    base_charge = np.select([plan == "basic", plan == "standard"], [30.0, 60.0], 95.0)
    charges = np.round(base_charge * (1 + 0.15 * drift) + rng.normal(0, 8, n), 2)
    calls = rng.poisson(1.5 * (1 + drift), n)
    new_share = min(0.1 * drift, 0.3)
    region_p = [*(np.array([0.3, 0.25, 0.25, 0.2]) * (1 - new_share)), new_share]
    region = np.array([*REGIONS, NEW_REGION])[rng.choice(len(REGIONS) + 1, n, p=region_p)]
    payment = np.array(PAYMENT_METHODS)[rng.choice(4, n, p=[0.35, 0.25, 0.25, 0.15])]
    days = tenure * 30 + rng.integers(0, 30, n)
    signup = np.datetime64(_REFERENCE_DATE, "s") - days.astype("timedelta64[D]")
    return pd.DataFrame(
        {
            "customer_id": ids,
            "signup_date": signup,
            "age": age,
            "income": income,
            "tenure_months": tenure,
            "monthly_charges": charges,
            "support_calls": calls,
            "plan": plan,
            "region": region,
            "payment_method": payment,
        }
    )


def _churn(rng: np.random.Generator, df: pd.DataFrame) -> npt.NDArray[np.str_]:
    """'yes'/'no' from a logistic model of several features plus noise (AUC ~0.85)."""
    import numpy as np

    signal = (
        0.55 * df["support_calls"].to_numpy()
        - 0.035 * df["tenure_months"].to_numpy()
        + 0.02 * (df["monthly_charges"].to_numpy() - 60)
        + 0.9 * (df["payment_method"] == "electronic_check").to_numpy()
        - 0.6 * (df["plan"] == "premium").to_numpy()
        - 0.015 * (df["age"].to_numpy() - 42)
    )
    logit = -1.8 + 2.0 * signal + rng.normal(0, 0.5, len(df))
    churned = rng.random(len(df)) < 1 / (1 + np.exp(-logit))
    return np.where(churned, "yes", "no")


def _spend(rng: np.random.Generator, df: pd.DataFrame) -> npt.NDArray[np.float64]:
    """Monthly spend: charges plus usage extras that depend on several features, plus noise."""
    import numpy as np

    spend = (
        df["monthly_charges"].to_numpy()
        + 4.0 * df["support_calls"].to_numpy()
        + 0.00015 * df["income"].to_numpy()
        + 6.0 * (df["region"] == "west").to_numpy()
        - 0.05 * df["tenure_months"].to_numpy()
        + rng.normal(0, 9, len(df))
    )
    rounded: npt.NDArray[np.float64] = np.round(np.maximum(spend, 0), 2)
    return rounded


def _make_messy(
    rng: np.random.Generator, df: pd.DataFrame, *, target: str, drift: float
) -> pd.DataFrame:
    """Stray spaces, markers, numbers and dates stored as text, missing values."""
    import numpy as np
    import pandas as pd

    n = len(df)
    null_rate = min(0.03 * (1 + 2 * drift), 0.5)

    def pick(rate: float) -> npt.NDArray[np.bool_]:
        return rng.random(n) < rate

    def with_missing(values: npt.NDArray[Any], rate: float) -> npt.NDArray[Any]:
        return np.where(pick(rate), np.nan, values)

    # Numbers stored as text, some padded with spaces, some '?'.
    income = _pad_some(rng, df["income"].to_numpy().astype("int64").astype("U12"), 0.2)
    columns: dict[str, Any] = {
        "customer_id": df["customer_id"].to_numpy(),
        "signup_date": np.datetime_as_string(df["signup_date"].to_numpy(), unit="D"),
        "age": with_missing(df["age"].to_numpy(), null_rate),
        "income": np.where(pick(null_rate), "?", income),
        "tenure_months": df["tenure_months"].to_numpy(),
        "monthly_charges": with_missing(df["monthly_charges"].to_numpy(), null_rate * 0.7),
        "support_calls": df["support_calls"].to_numpy(),
        "plan": _pad_some(rng, df["plan"].to_numpy().astype(str), 0.1),
        "region": np.where(
            pick(null_rate), "NA", _pad_some(rng, df["region"].to_numpy().astype(str), 0.1)
        ),
        "payment_method": _with_none(
            _pad_some(rng, df["payment_method"].to_numpy().astype(str), 0.1),
            pick(null_rate * 0.5),
        ),
        target: _with_none(df[target].to_numpy(), pick(0.005)),  # a few rows unlabelled
    }
    return pd.DataFrame(columns).rename(columns=_MESSY_HEADERS)


def _pad_some(
    rng: np.random.Generator, values: npt.NDArray[np.str_], rate: float
) -> npt.NDArray[np.str_]:
    """Add a leading or trailing space to about ``rate`` of the values."""
    import numpy as np

    roll = rng.random(len(values))
    padded = np.where(roll < rate / 2, np.char.add(" ", values), values)
    return np.where(roll > 1 - rate / 2, np.char.add(padded, "  "), padded)


def _with_none(values: npt.NDArray[Any], missing: npt.NDArray[np.bool_]) -> npt.NDArray[Any]:
    """An object array with None where ``missing``."""
    out = values.astype(object)
    out[missing] = None
    return out
