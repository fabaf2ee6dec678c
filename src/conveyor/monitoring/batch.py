"""Read a batch for offline drift analysis, cleaned the way ingest cleaned the training data."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from conveyor.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from conveyor.config import DataConfig
    from conveyor.monitoring.profile import ReferenceProfile

__all__ = ["read_batch"]

logger = logging.getLogger(__name__)

# The batch needs no labels: a placeholder target lets ``clean_table`` keep every row.
_PLACEHOLDER = "unlabelled"


def read_batch(
    source: str,
    profile: ReferenceProfile,
    *,
    data: DataConfig | None = None,
    cleaner: Any | None = None,
) -> pd.DataFrame:
    """Read and clean a batch: same readers (CSV, Parquet, s3://, postgresql://), same
    markers and whitespace rules as ingest, each feature forced to its training kind.

    Args:
        source: path or URL of the batch.
        profile: the reference; its features are read, everything else is ignored.
        data: the project's ``data`` section (its ``na_values`` and ``strip_whitespace``
            apply, and for a SQL batch its ``table`` or ``query``); defaults when None.
        cleaner: the model's value-cleaning step (``conveyor_cleaning``'s ``ValueCleaner``):
            its markers and stripping win over ``data``'s, so the batch is read exactly as
            the model and its training data were.

    Returns:
        The batch's feature columns: numbers as float64 (NaN missing), text as str.

    Raises:
        DataError: the batch is unreadable, lacks feature columns (all are named), or a
            column does not fit its training kind.
    """
    from conveyor.config import DataConfig
    from conveyor.data.cleaning import clean_table
    from conveyor.data.sources import SQL_SCHEMES, read_table

    features = list(profile.features)
    numeric = [n for n, p in profile.features.items() if p.kind == "numeric"]
    categorical = [n for n in features if n not in numeric]
    options: dict[str, Any] = {
        "na_values": data.na_values if data else None,
        "strip_whitespace": data.strip_whitespace if data else None,
    }
    if cleaner is not None:
        options = {"na_values": list(cleaner.na_values), "strip_whitespace": cleaner.strip}
    if data is not None and source.lower().startswith(SQL_SCHEMES):
        options.update(table=data.table, query=data.query)  # a SQL batch: the project's table
    given = {k: v for k, v in options.items() if v is not None}
    reader = DataConfig(source=source, target=profile.target, **given)
    raw = read_table(reader.model_copy(update={"categorical_columns": categorical or None}))
    missing = [name for name in features if name not in raw.columns]
    if missing:
        raise DataError(
            f"{source}: missing feature column(s) {', '.join(map(repr, missing))}"
            f" (the model was trained on: {', '.join(features)})"
        )
    batch = raw[features].assign(**{profile.target: _PLACEHOLDER})
    cleaning = reader.model_copy(
        update={
            "numeric_columns": numeric or None,
            "categorical_columns": categorical or None,
            "drop_id_columns": False,
        }
    )
    frame, _, _ = clean_table(batch, cleaning)
    logger.info("read batch of %s rows from %s", len(frame), source)
    return frame[features]
