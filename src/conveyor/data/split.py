"""Split a cleaned table into a training and a held-out test set (stratified, random, time)."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from conveyor.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from conveyor.config import SplitConfig
    from conveyor.data.schema import Task

__all__ = ["split_frame"]

logger = logging.getLogger(__name__)


def split_frame(
    df: pd.DataFrame, *, target: str, task: Task, config: SplitConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows into train and test sets, deterministically for a given seed.

    ``"auto"`` is stratified for classification and random for regression. ``"time"``
    sorts by ``config.time_column`` and holds out the latest ``test_size`` fraction.
    Stratification falls back to a random split (with a warning) when a class is too
    rare for it.

    Args:
        df: the cleaned table, target included.
        target: the target column (stratification key).
        task: the learning task.
        config: the ``split`` section: strategy, test_size, time_column, seed.

    Returns:
        ``(train, test)``, both with a fresh 0..n-1 index.

    Raises:
        DataError: fewer than 2 rows, the target is absent, or a time split's column is
            unset, absent or neither date/time nor numeric.

    Example:
        >>> train, test = split_frame(df, target="churned", task="binary", config=SplitConfig())
    """
    n = len(df)
    if n < 2:
        raise DataError(f"need at least 2 rows to split into train and test sets, got {n}")
    if target not in df.columns:
        raise DataError(f"target column {target!r} not found in the table to split")
    n_test = min(max(math.ceil(config.test_size * n), 1), n - 1)
    strategy = config.strategy
    if strategy == "auto":
        strategy = "random" if task == "regression" else "stratified"
    if strategy == "time":
        train, test = _time_split(df, config, n_test)
    elif strategy == "stratified":
        train, test = _stratified_split(df, target, config.seed, n_test)
    else:
        train, test = _random_split(df, config.seed, n_test)
    logger.info("split %s rows (%s): %s train, %s test", n, strategy, len(train), len(test))
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _random_split(df: pd.DataFrame, seed: int, n_test: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(df))
    return df.iloc[np.sort(order[n_test:])], df.iloc[np.sort(order[:n_test])]


def _stratified_split(
    df: pd.DataFrame, target: str, seed: int, n_test: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    labels = df[target]
    counts = labels.value_counts(dropna=False)
    rare = counts[counts < 2]
    if not rare.empty:
        logger.warning(
            "class %r of %r has fewer than 2 rows; splitting at random instead of stratified",
            rare.index[0],
            target,
        )
        return _random_split(df, seed, n_test)
    if n_test < len(counts) or len(df) - n_test < len(counts):
        logger.warning(
            "%s test rows cannot hold all %s classes of %r; splitting at random",
            n_test,
            len(counts),
            target,
        )
        return _random_split(df, seed, n_test)
    import numpy as np

    # Split positions, not the frame: the rows are taken once, already in table order
    # (splitting the frame would copy it shuffled, then again sorted).
    train, test = train_test_split(
        np.arange(len(df)), test_size=n_test, random_state=seed, shuffle=True, stratify=labels
    )
    return df.iloc[np.sort(train)], df.iloc[np.sort(test)]


def _time_split(
    df: pd.DataFrame, config: SplitConfig, n_test: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    import pandas as pd

    column = config.time_column
    if not column:
        raise DataError("split.strategy 'time' needs split.time_column")
    if column not in df.columns:
        shown = ", ".join(str(c) for c in df.columns[:8])
        raise DataError(
            f"split.time_column {column!r} not found (columns: {shown}); if cleaning dropped it"
            " as id-like or constant, list it in data.datetime_columns or data.numeric_columns"
        )
    values = df[column]
    is_time = pd.api.types.is_datetime64_any_dtype(values.dtype)
    is_number = pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(
        values.dtype
    )
    if not (is_time or is_number):
        raise DataError(
            f"split.time_column {column!r} must hold dates/times or numbers, not {values.dtype};"
            " list it in data.datetime_columns to parse it"
        )
    missing = int(values.isna().sum())
    if missing:
        logger.warning("%s rows without %r go to the training set", missing, column)
    ordered = df.sort_values(column, kind="stable", na_position="first")
    return ordered.iloc[: len(df) - n_test], ordered.iloc[len(df) - n_test :]
