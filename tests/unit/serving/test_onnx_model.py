"""OnnxModel: raw columns in, the pipeline's labels (same types) and probabilities out."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from conveyor.errors import RegistryError
from conveyor.registry.onnx_export import export_onnx
from conveyor.serving.inputs import InputColumn, InputSchema
from conveyor.serving.onnx_model import OnnxModel
from conveyor.serving.slot import schema_from_pipeline


def _frame(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=rows),
            "city": pd.Series(rng.choice(["oslo", "lima", "pune"], size=rows), dtype="str"),
        }
    )
    frame.loc[frame.index % 7 == 0, "size"] = np.nan
    frame.loc[frame.index % 9 == 0, "city"] = np.nan
    return frame


def _fit(frame: pd.DataFrame, target: Any) -> Pipeline:
    pre = ColumnTransformer(
        [
            ("num", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), ["size"]),
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                ["city"],
            ),
        ]
    )
    return Pipeline([("preprocess", pre), ("model", LogisticRegression())]).fit(frame, target)


def _model(pipeline: Pipeline, frame: pd.DataFrame) -> OnnxModel:
    export = export_onnx(pipeline, frame, tolerance=1e-6, parity_rows=100)
    assert export.verified and export.model is not None, export.reason
    classes = tuple(pipeline.classes_.tolist())
    return OnnxModel.load(export.model, schema_from_pipeline(pipeline), classes)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _frame()


def _target(frame: pd.DataFrame) -> np.ndarray:
    size = frame["size"].fillna(0).to_numpy()
    city = frame["city"].fillna("").to_numpy()
    return np.select([size < -0.5, city == "oslo"], [0, 2], 1)


COLUMNS = {"size": [0.3, math.nan, -1.2, 2.0], "city": ["oslo", None, "lima", "tromso"]}
AS_FRAME = pd.DataFrame({"size": COLUMNS["size"], "city": pd.array(COLUMNS["city"], dtype="str")})


def test_string_classes_come_back_as_the_pipeline_predicts_them(frame: pd.DataFrame) -> None:
    labels = np.array(["low", "mid", "high"])[_target(frame)]
    pipeline = _fit(frame, pd.Series(labels, dtype="str"))
    model = _model(pipeline, frame)

    got = model.predict_columns(COLUMNS, probabilities=False)

    assert got.predictions == pipeline.predict(AS_FRAME).tolist()
    assert all(type(v) is str for v in got.predictions)
    assert got.probabilities is None


def test_int_classes_and_probability_order(frame: pd.DataFrame) -> None:
    pipeline = _fit(frame, _target(frame) * 10 + 3)  # classes 3, 13, 23
    model = _model(pipeline, frame)

    got = model.predict_columns(COLUMNS, probabilities=True)

    assert model.classes == (3, 13, 23)
    assert got.predictions == pipeline.predict(AS_FRAME).tolist()
    assert all(type(v) is int for v in got.predictions)
    assert got.probabilities is not None
    assert np.allclose(got.probabilities, pipeline.predict_proba(AS_FRAME), atol=1e-9)
    assert all(math.isclose(sum(row), 1.0) for row in got.probabilities)


def test_missing_values_are_imputed_as_the_pipeline_does(frame: pd.DataFrame) -> None:
    pipeline = _fit(frame, _target(frame))
    model = _model(pipeline, frame)
    # None and NaN are both "missing"; "__missing__" is the level they are imputed to.
    columns = {"size": [math.nan, math.nan], "city": [None, "__missing__"]}

    got = model.predict_columns(columns, probabilities=True)

    expected = pipeline.predict_proba(pd.DataFrame({"size": [np.nan], "city": [np.nan]}))
    assert got.probabilities is not None
    assert np.allclose(got.probabilities, np.vstack([expected, expected]), atol=1e-9)


def test_classes_that_differ_from_the_pipeline_are_refused(frame: pd.DataFrame) -> None:
    pipeline = _fit(frame, _target(frame))
    export = export_onnx(pipeline, frame, tolerance=1e-6, parity_rows=50)
    assert export.model is not None

    with pytest.raises(RegistryError, match="classes"):
        OnnxModel.load(export.model, schema_from_pipeline(pipeline), (2, 1, 0))


def test_inputs_that_differ_from_the_schema_are_refused(frame: pd.DataFrame) -> None:
    pipeline = _fit(frame, _target(frame))
    export = export_onnx(pipeline, frame, tolerance=1e-6, parity_rows=50)
    assert export.model is not None
    wrong = InputSchema((InputColumn("size", "number", True), InputColumn("city", "number", True)))

    with pytest.raises(RegistryError, match="'city'"):
        OnnxModel.load(export.model, wrong, (0, 1, 2))


def test_bytes_that_are_not_a_model_are_refused() -> None:
    schema = InputSchema((InputColumn("size", "number", True),))

    with pytest.raises(RegistryError, match="does not load"):
        OnnxModel.load(b"not an onnx model", schema, ())
