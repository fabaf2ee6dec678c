"""The input schema read from a fitted pipeline, and warm-up and prediction of a slot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from conveyor.errors import RegistryError
from conveyor.serving.inputs import InputColumn
from conveyor.serving.settings import ServingSettings
from conveyor.serving.slot import ModelSlot, schema_from_pipeline

FRAME = pd.DataFrame(
    {
        "age": [20.0, 30.0, 40.0, 50.0],
        "zone": [1, 2, 1, 2],
        "job": pd.Series(["a", "b", "a", "b"], dtype="str"),
        "city": pd.Series(["x", "y", "y", "x"], dtype="str"),
    }
)
LABELS = pd.Series(["no", "yes", "no", "yes"], dtype="str")


def fitted(estimator: object) -> Pipeline:
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["age"]),
            ("zone", OneHotEncoder(), ["zone"]),
            (
                "cat",
                make_pipeline(SimpleImputer(strategy="most_frequent"), OrdinalEncoder()),
                ["job"],
            ),
            ("city", OneHotEncoder(), ["city"]),
        ]
    )
    return Pipeline([("pre", pre), ("model", estimator)]).fit(FRAME, LABELS)


def test_schema_reads_kinds_and_imputers_from_the_branches() -> None:
    schema = schema_from_pipeline(fitted(LogisticRegression()))
    assert schema.columns == (
        InputColumn("age", "number", nullable=True),
        InputColumn("zone", "number", nullable=False),  # an encoder with numeric categories
        InputColumn("job", "string", nullable=True),
        InputColumn("city", "string", nullable=False),
    )


def test_a_pipeline_fitted_without_names_is_refused() -> None:
    model = LinearRegression().fit(np.zeros((3, 2)), [1, 2, 3])
    with pytest.raises(RegistryError, match="does not record its input columns"):
        schema_from_pipeline(model)


def test_slot_warms_up_and_predicts_labels_and_probabilities() -> None:
    pipeline = fitted(LogisticRegression())
    slot = ModelSlot(
        pipeline=pipeline,
        name="m",
        version="1",
        run_id="r",
        schema=schema_from_pipeline(pipeline),
        classes=tuple(pipeline.classes_.tolist()),
    )
    slot.warm()
    prediction = slot.predict(FRAME, probabilities=True)
    assert prediction.predictions == pipeline.predict(FRAME).tolist()
    assert prediction.probabilities is not None
    assert np.allclose(prediction.probabilities, pipeline.predict_proba(FRAME))
    assert slot.to_dict()["classes"] == ["no", "yes"]


def test_warm_up_failure_names_the_model_version() -> None:
    pipeline = fitted(LogisticRegression())
    broken = ModelSlot(
        pipeline=object(), name="m", version="2", run_id="", schema=schema_from_pipeline(pipeline)
    )
    with pytest.raises(RegistryError, match="model 'm' version 2 failed its warm-up prediction"):
        broken.warm()


@pytest.mark.parametrize("uri", ["runs:/abc/model", "models:/", "models:/@champion", "m@champion"])
def test_serving_settings_take_only_registry_uris(uri: str) -> None:
    with pytest.raises(ValueError, match="not a registry model URI"):
        ServingSettings(model_uri=uri, tracking_uri="sqlite:///x.db")
