"""The training data as an MLflow dataset input, and dataset inputs read back from a run.

A run records where its data came from (secrets redacted from the URI), under MLflow's
source for that URI when it has one and a plain URI source otherwise (SQL tables,
synthetic data), with a column schema inferred from a bounded sample.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from conveyor.errors import RegistryError
from conveyor.redaction import redact

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities import Run

__all__ = ["SCHEMA_SAMPLE_ROWS", "dataset_inputs", "dataset_source", "redact_uri", "sample_schema"]

logger = logging.getLogger(__name__)

SCHEMA_SAMPLE_ROWS = 10_000


def sample_schema(frame: pd.DataFrame) -> Any:
    """MLflow's column schema of ``frame``, inferred from a bounded sample."""
    import pandas as pd
    from mlflow.types.utils import _infer_schema

    # The first rows, and each gappy column's first missing row (found by position: a
    # boolean filter per column would copy the whole table as often).
    with_nulls = sorted(
        {int(frame[c].isna().to_numpy().argmax()) for c in frame if frame[c].hasnans}
    )
    sample = pd.concat([frame.head(SCHEMA_SAMPLE_ROWS), frame.iloc[with_nulls]])
    try:
        return _infer_schema(sample)
    except Exception:  # MLflow logs a dataset without a schema when it cannot infer one
        logger.debug("no schema inferred for the dataset", exc_info=True)
        return None


def redact_uri(uri: str) -> str:
    """Hide every secret in a URI (password, secret query parameters): see ``redaction``."""
    return redact(uri)


def dataset_source(source: str) -> Any:
    """MLflow's source for ``source`` (local, s3, http), or a plain URI source otherwise."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.exceptions import MlflowException

    try:
        return resolve_dataset_source(source)
    except MlflowException:
        return _uri_source_class()(source)


@lru_cache(maxsize=1)
def _uri_source_class() -> type[Any]:
    """A DatasetSource for URIs MLflow has no resolver for (SQL tables, synthetic data)."""
    from mlflow.data.dataset_source import DatasetSource

    class UriDatasetSource(DatasetSource):  # type: ignore[misc]
        def __init__(self, uri: str) -> None:
            self.uri = uri

        @staticmethod
        def _get_source_type() -> str:
            return "uri"

        def load(self) -> Any:
            raise RegistryError(f"dataset source {self.uri!r} cannot be loaded through MLflow")

        @staticmethod
        def _can_resolve(raw_source: Any) -> bool:
            return False

        @classmethod
        def _resolve(cls, raw_source: Any) -> UriDatasetSource:
            return cls(str(raw_source))

        def to_dict(self) -> dict[str, Any]:
            return {"uri": self.uri}

        @classmethod
        def from_dict(cls, source_dict: dict[Any, Any]) -> UriDatasetSource:
            return cls(str(source_dict["uri"]))

    return UriDatasetSource


def dataset_inputs(run: Run) -> list[dict[str, Any]]:
    found = []
    for item in run.inputs.dataset_inputs if run.inputs else []:
        ds = item.dataset
        try:
            source = json.loads(ds.source)
        except (TypeError, ValueError):
            source = {"uri": ds.source}
        context = next((t.value for t in item.tags if t.key == "mlflow.data.context"), None)
        found.append(
            {
                "name": ds.name,
                "digest": ds.digest,
                "source": source.get("uri") or source.get("url") or ds.source,
                "source_type": ds.source_type,
                "context": context,
            }
        )
    return found
