"""Refuse, before reading it, a table whose working set would not fit in memory.

A table that does not fit would otherwise be read until the kernel's OOM killer ends the
run with no message. The estimate is cheap: a Parquet file's metadata and first rows, a
CSV file's size on disk and a parse of its head. It is compared, times ``WORKING_FACTOR``,
with the memory this process may still use (the system's available memory, or its
cgroup's room if smaller).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

from conveyor.errors import DataError

__all__ = [
    "COMPRESSED_CSV_RATIO",
    "WORKING_FACTOR",
    "TableFootprint",
    "available_memory",
    "check_fits",
]

logger = logging.getLogger(__name__)

# Training holds several copies of the table at its peak: the Arrow table and the pandas
# frame made from it while reading, the cleaned frame, the train/test split (a copy of
# every row), then the model's own view of the features. Measured on the demo dataset
# (1M and 3M rows, one run each): reading, cleaning, saving and splitting it grew peak RSS
# by 5.6-6.2x the Arrow table read from CSV and 4.0-4.8x from Parquet. The side worker's
# own copy, held while the table is split, adds little: on the demo table at 1M rows the
# run's peak went from 1.21-1.24 GB to 1.26-1.31 GB with it (3 runs each).
WORKING_FACTOR = 6.0

# A compressed CSV (.gz, .bz2, .zst, .xz) is assumed this many times larger once
# decompressed; typical tabular CSVs compress 4-10x, so this errs towards reading.
COMPRESSED_CSV_RATIO = 4.0

# Above this a cgroup limit means "no limit" (cgroup v1 writes 2**63 rounded to a page).
_UNLIMITED = 2**60
_CGROUP_FILES = (
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # v2
    (
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",  # v1
        "/sys/fs/cgroup/memory/memory.usage_in_bytes",
    ),
)


@dataclass(frozen=True)
class TableFootprint:
    """An estimate of a whole table's size in memory, as Arrow holds it once read.

    Attributes:
        nbytes: estimated bytes of the whole table in memory.
        rows: its row count (exact for Parquet, estimated for CSV).
        columns: its column count, when known.
        exact_rows: whether ``rows`` is counted rather than estimated.
    """

    nbytes: int
    rows: int
    columns: int | None = None
    exact_rows: bool = True


def available_memory() -> int | None:
    """Bytes this process may still allocate: the smaller of the system's available
    memory and its cgroup's limit minus its usage.

    Returns:
        The bytes, or ``None`` when neither can be read (then nothing is refused).
    """
    available: int | None = None
    try:
        import psutil  # type: ignore[import-untyped]

        available = int(psutil.virtual_memory().available)
    except (ImportError, OSError):
        pass
    room = _cgroup_room()
    if room is not None:
        available = room if available is None else min(available, room)
    return available


def _cgroup_room() -> int | None:
    """The cgroup's memory limit minus its current usage, or ``None`` when unlimited."""
    for limit_file, usage_file in _CGROUP_FILES:
        try:
            limit_text = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit_text == "max" or not limit_text.isdigit() or int(limit_text) >= _UNLIMITED:
            continue
        return max(int(limit_text) - usage, 0)
    return None


def check_fits(
    footprint: TableFootprint, *, source: str, max_rows: int | None, available: int | None
) -> None:
    """Refuse a table whose working set would exceed the available memory.

    Args:
        footprint: the whole table's estimated size.
        source: ``data.source``, named in the message.
        max_rows: ``data.max_rows``; a smaller sample is what will be held.
        available: bytes the process may still allocate (``available_memory()``);
            ``None`` checks nothing.

    Raises:
        DataError: it would not fit; the message gives the estimate, the memory available
            and a ``data.max_rows`` that would fit.
    """
    if available is None or footprint.rows <= 0:
        return
    row_bytes = footprint.nbytes / footprint.rows
    held_rows = footprint.rows if max_rows is None else min(max_rows, footprint.rows)
    working_set = held_rows * row_bytes * WORKING_FACTOR
    logger.debug("%s: working set about %s, %s available", source, _gb(working_set), _gb(available))
    if working_set <= available:
        return
    fitting = _round_down(available / (row_bytes * WORKING_FACTOR))
    about = "" if footprint.exact_rows else "about "
    columns = f" x {footprint.columns:,} columns" if footprint.columns else ""
    held = "" if held_rows == footprint.rows else f" (a sample of {held_rows:,} rows)"
    raise DataError(
        f"data.source {source} does not fit in memory: {about}{footprint.rows:,} rows"
        f"{columns}, about {_gb(footprint.nbytes)} in memory as read; training{held} needs"
        f" about {WORKING_FACTOR:g}x that ({_gb(working_set)}) but {_gb(available)} is"
        f" available; set data.max_rows to about {fitting:,} to sample it, or"
        " data.memory_check: false to read it anyway"
    )


def _round_down(rows: float) -> int:
    """Rows rounded down to two significant digits, at least 1."""
    if rows < 1:
        return 1
    scale = int(10 ** max(int(math.log10(rows)) - 1, 0))
    return max(int(rows // scale) * scale, 1)


def _gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 1e8 else f"{nbytes / 1e6:.1f} MB"
