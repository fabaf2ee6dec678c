"""Generated raw tables with what real exports hold, for the raw-row parity tests.

Column names with hyphens, spaces and dots; integer columns; a numeric column stored as
text (some with thousands separators, some padded); categories with stray spaces and
missing markers (``?``, ``NA``, empty); a sequential ID column (dropped as ID-like); rows
whose every feature is missing (``with_null_rows``, which makes every column nullable,
so integers read as floats, as pandas reads them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TARGET = "class"
ID = "row id"
FEATURES = ["age", "education-num", "hours per week", "capital.gain", "work class", "region"]
WORK = ("Private", "Self-emp", "Gov", "Never-worked")
REGIONS = ("north", "south", "east", "west")


def messy_table(n: int = 1200, *, seed: int = 0, with_null_rows: bool = False) -> pd.DataFrame:
    """A raw table as ``pandas.read_csv`` would read it from a real export.

    Args:
        n: rows.
        seed: same seed, same table.
        with_null_rows: make a few rows missing in every feature.

    Returns:
        Columns ``row id``, the ``FEATURES`` and ``class`` (``">50K"`` / ``"<=50K"``).
    """
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    education = rng.integers(1, 17, n)
    hours = rng.integers(5, 80, n)
    gain = rng.integers(0, 30_000, n)
    work = rng.choice(WORK, n, p=[0.55, 0.2, 0.2, 0.05])
    region = rng.choice(REGIONS, n)
    score = education * 3 + hours / 5 + (age > 40) * 6 + (work == "Self-emp") * 5
    label = score + rng.normal(0, 4, n) > np.median(score)
    gain_text = [f"{g:,}" if i % 3 else f" {g} " for i, g in enumerate(gain)]
    work_text = [_messy_category(w, i) for i, w in enumerate(work)]
    frame = pd.DataFrame(
        {
            ID: np.arange(n),
            "age": age,
            "education-num": education,
            "hours per week": [str(h) if i % 40 else "?" for i, h in enumerate(hours)],
            "capital.gain": gain_text,
            "work class": work_text,
            "region": region,
            TARGET: np.where(label, ">50K", "<=50K"),
        }
    )
    if with_null_rows:
        blank = rng.choice(n, size=max(3, n // 200), replace=False)
        for column in FEATURES:
            frame[column] = frame[column].astype(object)
            frame.loc[blank, column] = None
    return reread(frame)


def _messy_category(value: str, row: int) -> str:
    if row % 23 == 0:
        return "?"
    if row % 31 == 0:
        return "NA"
    if row % 37 == 0:
        return ""
    return f" {value}" if row % 5 == 0 else value


def reread(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` written to CSV and read back: the dtypes a user's table really has."""
    import io

    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    buffer.seek(0)
    return pd.read_csv(buffer)


def scoring_rows(table: pd.DataFrame, *, seed: int = 1) -> pd.DataFrame:
    """Raw rows to score: some of the table's own, plus unseen levels and padded text."""
    rows = table.sample(n=min(120, len(table)), random_state=seed).reset_index(drop=True)
    rows.loc[0, "work class"] = "Astronaut"  # never seen in training
    rows.loc[1, "region"] = "  central "  # unseen, padded
    rows.loc[2, "capital.gain"] = "?"
    return rows


def write_project(folder: Path, table: pd.DataFrame, *, name: str) -> Path:
    """A project folder with the table as CSV and a minimal config; the config's path."""
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "table.csv", index=False)
    config = folder / "conveyor.yaml"
    config.write_text(
        f"name: {name}\ndata:\n  source: table.csv\n  target: {TARGET!r}\n", encoding="utf-8"
    )
    return config
