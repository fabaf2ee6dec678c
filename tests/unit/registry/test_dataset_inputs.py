"""The dataset input's column schema, inferred from a bounded sample of the table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from conveyor.registry.dataset_inputs import SCHEMA_SAMPLE_ROWS, sample_schema


def _late_gaps(rows: int) -> pd.DataFrame:
    """A table whose only missing values lie past the first ``SCHEMA_SAMPLE_ROWS`` rows."""
    frame = pd.DataFrame(
        {
            "monthly charges": np.arange(rows, dtype="float64"),
            "plan.type": pd.array(["basic"] * rows, dtype="str"),
            "age": np.ones(rows),
        }
    )
    frame.loc[rows - 3, "monthly charges"] = np.nan
    frame.loc[rows - 1, "plan.type"] = None
    return frame


def test_a_column_missing_only_past_the_sample_is_optional() -> None:
    schema = sample_schema(_late_gaps(SCHEMA_SAMPLE_ROWS + 50))
    required = {spec.name: spec.required for spec in schema.inputs}
    assert required == {"monthly charges": False, "plan.type": False, "age": True}
