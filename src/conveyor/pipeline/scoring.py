"""Batch scoring: a registered model over a table of raw rows, chunk by chunk, to a file.

Each chunk is cleaned by the model's own value rules (the rules of its pipeline's first
step, which training and the server apply), checked as the server checks a request
(every feature column present; text that is no number, infinite numbers and missing
values where the model imputes none are bad rows), scored by the version's runtime
(ONNX Runtime when its export is parity-verified, else the pipeline) and appended to the
output (Parquet or CSV). Bad rows are counted, and written with their reason to a
rejects file when asked; they never stop the run. Memory holds one chunk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

    from conveyor.data.batches import Chunk
    from conveyor.serving.inputs import InputSchema
    from conveyor.serving.slot import ModelSlot

__all__ = ["ScoringReport", "score_chunks"]

logger = logging.getLogger(__name__)

MAX_REASONS = 10
Progress = Callable[[int, int], None]
"""Called after each chunk with (rows read so far, rows rejected so far)."""


@dataclass
class ScoringReport:
    """What one batch scoring run did.

    Attributes:
        model: registered model name.
        version: the version that scored.
        runtime: ``onnx`` or ``pyfunc``.
        rows: rows read.
        scored: rows written to the output.
        rejected: bad rows (not scored).
        seconds: wall time.
        output: the output file.
        rejects: the rejects file, if asked for.
        reasons: the first few reasons rows were rejected.
        ignored_columns: input columns the model does not take.
    """

    model: str
    version: str
    runtime: str
    rows: int = 0
    scored: int = 0
    rejected: int = 0
    seconds: float = 0.0
    output: str = ""
    rejects: str | None = None
    reasons: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "model": self.model,
            "version": self.version,
            "runtime": self.runtime,
            "rows": self.rows,
            "scored": self.scored,
            "rejected": self.rejected,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows / self.seconds) if self.seconds else None,
            "output": self.output,
            "rejects": self.rejects,
            "reasons": list(self.reasons),
            "ignored_columns": list(self.ignored_columns),
        }


def score_chunks(
    slot: ModelSlot,
    chunks: Any,
    *,
    output: Path,
    probabilities: bool = False,
    id_column: str | None = None,
    rejects: Path | None = None,
    progress: Progress | None = None,
) -> ScoringReport:
    """Score every chunk with ``slot`` and write the answers to ``output``.

    Args:
        slot: the loaded model version (``serving.slot.load_version``).
        chunks: ``data.batches.Chunk`` objects, in order.
        output: ``.parquet`` or ``.csv`` file to write (replaced when done, never half
            written).
        probabilities: add one ``probability_<class>`` column per class (classifiers).
        id_column: an input column copied to the output beside each prediction.
        rejects: a ``.csv`` file for the bad rows (row number, id, reason).
        progress: called after each chunk.

    Returns:
        The report.

    Raises:
        DataError: a feature column or the id column is missing, or the output format is
            unknown.
    """
    started = time.perf_counter()
    writer = _Writer(output)
    reject_writer = _Writer(rejects) if rejects is not None else None
    report = ScoringReport(slot.name, slot.version, slot.runtime, output=str(output))
    report.rejects = str(rejects) if rejects is not None else None
    try:
        for chunk in chunks:
            _score_chunk(
                slot,
                chunk,
                report,
                writer=writer,
                reject_writer=reject_writer,
                probabilities=probabilities,
                id_column=id_column,
            )
            if progress is not None:
                progress(report.rows, report.rejected)
        writer.close(commit=True)
        if reject_writer is not None:
            reject_writer.close(commit=True)
    finally:
        writer.close(commit=False)
        if reject_writer is not None:
            reject_writer.close(commit=False)
    report.seconds = time.perf_counter() - started
    return report


def _score_chunk(
    slot: ModelSlot,
    chunk: Chunk,
    report: ScoringReport,
    *,
    writer: _Writer,
    reject_writer: _Writer | None,
    probabilities: bool,
    id_column: str | None,
) -> None:
    import numpy as np

    frame = chunk.frame
    names = slot.schema.canonical([str(c) for c in frame.columns])
    if names != list(frame.columns):
        frame = frame.set_axis(names, axis="columns")
    _check_columns(slot.schema, list(frame.columns), id_column, report)
    columns, bad, reasons = clean_chunk(slot.schema, frame, text=chunk.text)
    report.rows += len(frame)
    good = ~bad
    ids = frame[id_column] if id_column else None
    if bad.any():
        report.rejected += int(bad.sum())
        report.reasons.extend(reasons[: MAX_REASONS - len(report.reasons)])
        if reject_writer is not None:
            reject_writer.write(_rejects_frame(chunk, bad, reasons, ids, id_column))
    if not good.any():
        return
    batch = _batch(columns, good)
    answer = slot.predict_batch(batch, probabilities=probabilities and slot.is_classifier)
    out = _answers_frame(slot, answer, ids[good] if ids is not None else None, id_column)
    report.scored += int(np.count_nonzero(good))
    writer.write(out)


def _check_columns(
    schema: InputSchema, names: list[str], id_column: str | None, report: ScoringReport
) -> None:
    missing = [n for n in schema.names if n not in names]
    if missing:
        shown = ", ".join(repr(n) for n in missing[:8])
        where = f" from row {report.rows}" if report.rows else ""
        raise DataError(f"the input lacks feature column(s) {shown} of the model{where}")
    if id_column is not None and id_column not in names:
        raise DataError(f"--id-column {id_column!r} is not a column of the input")
    if not report.ignored_columns:
        ignored = [n for n in names if schema.column(n) is None and n != id_column]
        report.ignored_columns = ignored


def clean_chunk(
    schema: InputSchema, frame: pd.DataFrame, *, text: bool
) -> tuple[dict[str, Any], npt.NDArray[np.bool_], list[str]]:
    """A chunk's feature columns cleaned and checked, vectorised (no per-row Python).

    Args:
        schema: the model's input columns and value rules.
        frame: the raw rows.
        text: the values are CSV text (an empty field is missing).

    Returns:
        ``(columns, bad, reasons)``: cleaned columns (float64 arrays; object arrays of
        ``str`` or None), a row mask of bad rows and one reason per bad row in row order.
    """
    import numpy as np

    from conveyor_cleaning.values import ValueRules, clean_categories, numbers_by_row

    # A model without value rules: no markers and no stripping (numbers as text and
    # numbers used as categories are still read, which the server's strict path refuses).
    rules = schema.rules or ValueRules(frozenset(), strip=False)
    rows = len(frame)
    bad = np.zeros(rows, dtype=bool)
    why: dict[int, str] = {}
    columns: dict[str, Any] = {}
    for column in schema.columns:
        raw = frame[column.name]
        if text:  # an empty CSV field is missing, as training reads CSV (and the server)
            blank = raw.str.strip() == "" if column.kind == "number" else raw == ""
            raw = raw.mask(blank.to_numpy(dtype=bool, na_value=False))
        if column.kind == "number":
            values, _, unparsable = numbers_by_row(raw, rules)
            message = f"column {column.name!r}: expected a number, got"
            _flag(why, bad, unparsable, message, values=raw)
            _flag(why, bad, np.isinf(values), f"column {column.name!r}: infinite value")
            missing = np.isnan(values) & ~unparsable
            columns[column.name] = values
        else:
            cleaned, _ = clean_categories(raw.reset_index(drop=True), rules)
            missing = cleaned.isna().to_numpy()
            columns[column.name] = np.where(missing, None, cleaned.to_numpy(dtype=object))
        if not column.nullable:
            _flag(why, bad, missing, f"column {column.name!r}: missing value not allowed")
    return columns, bad, [why[i] for i in sorted(why)]


def _flag(
    why: dict[int, str],
    bad: npt.NDArray[np.bool_],
    mask: npt.NDArray[np.bool_],
    message: str,
    *,
    values: pd.Series | None = None,
) -> None:
    """Mark rows bad with a reason (the first reason of a row is kept)."""
    import numpy as np

    for row in np.flatnonzero(mask & ~bad).tolist():
        shown = f" {str(values.iloc[row])[:40]!r}" if values is not None else ""
        why[row] = message + shown
    bad |= mask


def _batch(columns: dict[str, Any], good: npt.NDArray[np.bool_]) -> Any:
    from conveyor.serving.inputs import Batch

    kept = {name: values[good] for name, values in columns.items()}
    rows = int(good.sum())
    return Batch(kept, rows)  # type: ignore[arg-type]  # arrays serve as sequences


def _answers_frame(
    slot: ModelSlot, answer: Any, ids: pd.Series | None, id_column: str | None
) -> pd.DataFrame:
    import pandas as pd

    data: dict[str, Any] = {}
    if ids is not None and id_column is not None:
        data[id_column] = ids.to_numpy()
    data["prediction"] = answer.predictions
    if answer.probabilities is not None:
        for index, label in enumerate(slot.classes):
            data[f"probability_{label}"] = [p[index] for p in answer.probabilities]
    frame = pd.DataFrame(data)
    frame["model_name"] = slot.name
    frame["model_version"] = slot.version
    return frame


def _rejects_frame(
    chunk: Chunk,
    bad: npt.NDArray[np.bool_],
    reasons: list[str],
    ids: pd.Series | None,
    id_column: str | None,
) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    rows = np.flatnonzero(bad) + chunk.start
    data: dict[str, Any] = {"row": rows}
    if ids is not None and id_column is not None:
        data[id_column] = ids.to_numpy()[bad]
    data["reason"] = reasons
    return pd.DataFrame(data)


class _Writer:
    """Appends frames to a Parquet or CSV file, written beside it and renamed at the end."""

    def __init__(self, path: Path) -> None:
        suffix = path.suffix.lower()
        if suffix not in (".parquet", ".csv"):
            raise DataError(f"output {path}: use a .parquet or .csv file name")
        self.path = path
        self.tmp = path.with_name(f".{path.name}.partial")
        self.parquet = suffix == ".parquet"
        self.sink: Any = None
        self.schema: Any = None
        self.closed = False

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.sink is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.schema = table.schema
            self.sink = self._open(table.schema)
        elif table.schema != self.schema:
            table = table.cast(self.schema)
        self.sink.write_table(table)

    def _open(self, schema: Any) -> Any:
        if self.parquet:
            import pyarrow.parquet as pq

            return pq.ParquetWriter(self.tmp, schema)
        import pyarrow.csv as pcsv

        return pcsv.CSVWriter(self.tmp, schema)

    def close(self, *, commit: bool) -> None:
        if self.closed:
            return
        self.closed = True
        if self.sink is not None:
            self.sink.close()
        if commit and self.sink is None:
            self._empty()
        if commit:
            self.tmp.replace(self.path)
        else:
            self.tmp.unlink(missing_ok=True)

    def _empty(self) -> None:
        """No row at all: an empty file of the format (CSV: nothing; Parquet: no columns)."""
        import pyarrow as pa

        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.parquet:
            import pyarrow.parquet as pq

            pq.write_table(pa.table({}), self.tmp)
        else:
            self.tmp.write_text("", encoding="utf-8")
