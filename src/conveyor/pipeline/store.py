"""The local run store: one folder per run, step outputs inside, a cache index beside.

Layout under ``.conveyor/``::

    runs/<run_id>/record.json         the run record (status, steps, timings, results)
    runs/<run_id>/<step>/...          the step's outputs (parquet, json, model, plots)
    cache/<step>-<key>.json           {"run_id": ..., "outputs": "<dir of the outputs>"}

A cached step does not copy its outputs: the new run's record points at the folder of
the run that produced them. Every file is written durably (``conveyor.durable``: a
temporary file, fsync, rename, fsync of the folder), so neither a crash nor a power cut
leaves a half-written output, record or cache entry that a later run would trust. A cache
entry that is unreadable anyway (emptied, cut short, edited by hand) is a cache miss; an
unreadable run record is a clear error naming the file.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.durable import durable_write
from conveyor.errors import PipelineError
from conveyor.redaction import redact_tree

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RunStore", "atomic_write_text", "new_run_id", "utc_now"]

log = logging.getLogger(__name__)


def utc_now() -> str:
    """ISO-8601 UTC timestamp, second precision."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def new_run_id() -> str:
    """A sortable, unique run id: ``20261126T051500-3f9a1c``."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file durably: readers never see half of it, a power cut never loses it.

    Raises:
        PipelineError: the file cannot be written (the message names it and says why,
            e.g. "No space left on device"); its previous content is intact.
    """
    _write_durably(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


class RunStore:
    """Reads and writes runs, step outputs and the cache index of one project."""

    def __init__(self, runs_dir: Path, cache_dir: Path) -> None:
        self.runs_dir = runs_dir
        self.cache_dir = cache_dir

    # -- runs ---------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        """Folder of a run (not created)."""
        return self.runs_dir / run_id

    def write_record(self, run_id: str, record: dict[str, Any]) -> None:
        """Persist a run record."""
        # Passwords in a source URI or a remote, tokens in error messages: never on disk.
        text = json.dumps(redact_tree(record), indent=2)
        atomic_write_text(self.run_dir(run_id) / "record.json", text)

    def read_record(self, run_id: str) -> dict[str, Any]:
        """Load a run record.

        Raises:
            PipelineError: no such run, or its record is unreadable (not a JSON object).
        """
        path = self.run_dir(run_id) / "record.json"
        if not path.is_file():
            known = ", ".join(self.run_ids()[:5]) or "none yet"
            raise PipelineError(f"unknown run id {run_id!r} (latest: {known})")
        data = _read_json(path, what="run record")
        if not isinstance(data, dict):
            raise PipelineError(f"run record {path} is unreadable: not a JSON object")
        return data

    def run_ids(self) -> list[str]:
        """Known run ids, newest first."""
        if not self.runs_dir.is_dir():
            return []
        return sorted((p.name for p in self.runs_dir.iterdir() if p.is_dir()), reverse=True)

    # -- step outputs -------------------------------------------------------
    def step_dir(self, run_id: str, step: str) -> Path:
        """Fresh output folder of a step in a run."""
        path = self.run_dir(run_id) / step
        path.mkdir(parents=True, exist_ok=True)
        return path

    @staticmethod
    def save_json(folder: Path, name: str, data: Any) -> Path:
        """Write ``<folder>/<name>.json``."""
        path = folder / f"{name}.json"
        atomic_write_text(path, json.dumps(data, indent=2, default=str))
        return path

    @staticmethod
    def load_json(folder: Path, name: str) -> Any:
        """Read ``<folder>/<name>.json``.

        Raises:
            PipelineError: the output is missing or unreadable.
        """
        return _read_json(_existing(folder / f"{name}.json"), what="step output")

    @staticmethod
    def save_frame(folder: Path, name: str, frame: pd.DataFrame) -> Path:
        """Write ``<folder>/<name>.parquet`` (atomically)."""
        return _write_durably(
            folder / f"{name}.parquet", lambda tmp: frame.to_parquet(tmp, index=False)
        )

    @staticmethod
    def load_frame(folder: Path, name: str) -> pd.DataFrame:
        """Read ``<folder>/<name>.parquet``.

        Raises:
            PipelineError: the output is missing.
        """
        import pandas as pd

        return pd.read_parquet(_existing(folder / f"{name}.parquet"))

    @staticmethod
    def save_bytes(folder: Path, name: str, data: bytes) -> Path:
        """Write the file ``<folder>/<name>`` (atomically)."""
        return _write_durably(folder / name, lambda tmp: tmp.write_bytes(data))

    @staticmethod
    def load_bytes(folder: Path, name: str) -> bytes:
        """Read the file ``<folder>/<name>``.

        Raises:
            PipelineError: the output is missing.
        """
        return _existing(folder / name).read_bytes()

    @staticmethod
    def save_model(folder: Path, name: str, model: Any) -> Path:
        """Write a fitted model to the run store (joblib; local intermediate only).

        The registry never receives this file: MLflow serialises the model itself with
        the format chosen in ``conveyor.registry.serialization``.
        """
        import joblib

        return _write_durably(folder / f"{name}.joblib", lambda tmp: joblib.dump(model, tmp))

    @staticmethod
    def load_model(folder: Path, name: str) -> Any:
        """Read a model this store wrote.

        Raises:
            PipelineError: the output is missing.
        """
        import joblib

        return joblib.load(_existing(folder / f"{name}.joblib"))

    # -- cache index --------------------------------------------------------
    def cache_lookup(self, step: str, key: str) -> Path | None:
        """Output folder of an earlier identical step, if it is still complete.

        An entry that cannot be read (empty, cut short, not JSON, no ``outputs``) is a
        miss: the step runs again and rewrites it.
        """
        entry = self.cache_dir / f"{step}-{key}.json"
        if not entry.is_file():
            return None
        try:
            outputs = json.loads(entry.read_text(encoding="utf-8"))["outputs"]
            folder = Path(outputs)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.warning("cache entry %s is unreadable (%s); running %s again", entry, exc, step)
            return None
        return folder if (folder / ".complete").is_file() else None

    def cache_store(self, step: str, keys: list[str], folder: Path, run_id: str) -> None:
        """Mark a step's outputs complete and index them under each key."""
        atomic_write_text(folder / ".complete", utc_now())
        for key in keys:
            payload = json.dumps({"run_id": run_id, "outputs": str(folder)})
            atomic_write_text(self.cache_dir / f"{step}-{key}.json", payload)


def _existing(path: Path) -> Path:
    """``path`` if the step output exists, else a PipelineError saying what to re-run."""
    if not path.is_file():
        raise PipelineError(f"missing step output {path}; re-run the step that makes it")
    return path


def _read_json(path: Path, *, what: str) -> Any:
    """The JSON in ``path``, or a PipelineError naming the file and what is wrong with it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PipelineError(f"{what} {path} is unreadable: {exc}") from exc


def _write_durably(path: Path, write: Callable[[Path], object]) -> Path:
    """``durable_write`` with its failure as a PipelineError naming the file and the cause."""
    try:
        return durable_write(path, write)
    except OSError as exc:
        raise PipelineError(f"cannot write {path}: {exc.strerror or exc}") from exc
