"""A seeded, uniform random sample of a table's rows, drawn while it streams past in batches.

Every row gets a random key from one seeded numpy ``Generator``, drawn in stream order; the
sample is the ``size`` rows with the smallest keys. Keys depend only on the seed and on a
row's position in the stream, not on where batches are cut, so the same source and seed
give the same rows on every run (which keeps cached steps and dataset versions stable).
Rows keep their stream order. Memory holds the sample, some slack and one batch, never the
whole table.

Example:
    >>> table = sample_batches(parquet_file.iter_batches(), 1000, schema=schema, source=path)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "ARROW_ROWS",
    "FRAME_ROWS",
    "SAMPLE_SEED",
    "RowOps",
    "RowSample",
    "sample_batches",
    "sample_frames",
]

logger = logging.getLogger(__name__)

# The seed of ``data.max_rows`` sampling. Fixed: a sample is part of the dataset's identity.
SAMPLE_SEED = 0

T = TypeVar("T")


@dataclass(frozen=True)
class RowOps(Generic[T]):
    """How to count, select and join the rows of one kind of batch (Arrow, pandas)."""

    count: Callable[[T], int]
    take: Callable[[T, npt.NDArray[np.intp]], T]
    concat: Callable[[Sequence[T]], T]


class RowSample(Generic[T]):
    """The ``size`` rows with the smallest seeded random keys among all rows added.

    Args:
        size: most rows to keep.
        rows: the row operations of the batches that will be added.
        seed: seeds the row keys.
    """

    def __init__(self, size: int, *, rows: RowOps[T], seed: int = SAMPLE_SEED) -> None:
        import numpy as np

        if size < 1:
            raise ValueError(f"a sample needs at least one row, got size={size}")
        self.size = size
        self.seen = 0
        self._ops = rows
        self._rng = np.random.default_rng(seed)
        # Candidates wait in pieces until they exceed size + slack; then one selection
        # keeps ``size`` of them. The slack bounds how often the sample is copied.
        self._slack = max(size // 2, 1)
        self._pieces: list[T] = []
        self._keys: list[npt.NDArray[np.float64]] = []
        self._candidates = 0
        self._cut = 1.0  # rows with a key at or above it can no longer enter the sample

    def add(self, batch: T) -> None:
        """Offer the next batch of the stream; only rows that may be sampled are kept.

        Args:
            batch: the next rows, in stream order.
        """
        import numpy as np

        count = self._ops.count(batch)
        keys = self._rng.random(count)
        self.seen += count
        if self._cut < 1.0:
            entering = np.flatnonzero(keys < self._cut)
            if entering.size == 0:
                return
            if entering.size < count:
                batch, keys = self._ops.take(batch, entering), keys[entering]
        self._pieces.append(batch)
        self._keys.append(keys)
        self._candidates += len(keys)
        if self._candidates > self.size + self._slack:
            self._select()

    def result(self) -> T | None:
        """The sampled rows in stream order; every row when at most ``size`` were added.

        Returns:
            The sample, or ``None`` when no batch was added.
        """
        if self._candidates > self.size:
            self._select()
        if not self._pieces:
            return None
        return self._pieces[0] if len(self._pieces) == 1 else self._ops.concat(self._pieces)

    def _select(self) -> None:
        """Keep the ``size`` candidates with the smallest keys, in stream order."""
        import numpy as np

        keys = np.concatenate(self._keys)
        keep = np.sort(np.argpartition(keys, self.size - 1)[: self.size])
        self._pieces = [self._ops.take(self._ops.concat(self._pieces), keep)]
        self._keys = [keys[keep]]
        self._candidates = self.size
        self._cut = float(keys[keep].max())


def _arrow_take(table: pa.Table, positions: npt.NDArray[np.intp]) -> pa.Table:
    return table.take(positions)


def _arrow_concat(tables: Sequence[pa.Table]) -> pa.Table:
    import pyarrow as pa

    return pa.concat_tables(tables)


def _frame_take(frame: pd.DataFrame, positions: npt.NDArray[np.intp]) -> pd.DataFrame:
    return frame.iloc[positions]


def _frame_concat(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def _count(rows: Any) -> int:
    return len(rows)


# Row operations of pyarrow Tables (wrap record batches with ``pa.Table.from_batches``).
ARROW_ROWS: RowOps[pa.Table] = RowOps(count=_count, take=_arrow_take, concat=_arrow_concat)
# Row operations of pandas DataFrames (the result's index is not meaningful: reset it).
FRAME_ROWS: RowOps[pd.DataFrame] = RowOps(count=_count, take=_frame_take, concat=_frame_concat)


def sample_batches(
    batches: Iterable[pa.RecordBatch | pa.Table], size: int, *, schema: pa.Schema, source: str
) -> pa.Table:
    """A seeded uniform sample of at most ``size`` rows of a stream of Arrow batches.

    Args:
        batches: the table's rows, in order.
        size: most rows to keep (``data.max_rows``).
        schema: the table's schema, for an empty result.
        source: what is read, for the log.

    Returns:
        The sampled rows in stream order; every row when there are at most ``size``.
    """
    import pyarrow as pa

    sample = RowSample(size, rows=ARROW_ROWS)
    for batch in batches:
        sample.add(batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch]))
    table = sample.result()
    _log(sample, source)
    return schema.empty_table() if table is None else table


def sample_frames(frames: Iterable[pd.DataFrame], size: int, *, source: str) -> pd.DataFrame:
    """A seeded uniform sample of at most ``size`` rows of a stream of DataFrames.

    Args:
        frames: the table's rows, in order (e.g. ``pandas.read_sql_query`` chunks).
        size: most rows to keep (``data.max_rows``).
        source: what is read, for the log.

    Returns:
        The sampled rows in stream order with a fresh 0..n-1 index; every row when there
        are at most ``size``.
    """
    import pandas as pd

    sample = RowSample(size, rows=FRAME_ROWS)
    for frame in frames:
        sample.add(frame)
    result = sample.result()
    _log(sample, source)
    return pd.DataFrame() if result is None else result.reset_index(drop=True)


def _log(sample: RowSample[Any], source: str) -> None:
    kept = min(sample.seen, sample.size)
    logger.info("sampled %s of %s rows from %s (data.max_rows)", kept, sample.seen, source)
