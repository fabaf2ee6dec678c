"""ONNX export at registration: which pipelines convert, and the graph answers as they do."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conveyor.config import ModelSpec
from conveyor.data.schema import TableSchema
from conveyor.registry.onnx_export import OnnxExport, export_onnx, frame_columns
from conveyor.serving.onnx_model import OnnxModel
from conveyor.serving.slot import schema_from_pipeline
from conveyor.training.train import build_pipeline

TOLERANCE = 1e-4
TARGETS = {"binary": "binary", "multiclass": "multiclass", "regression": "value"}
SMALL = {
    "lightgbm": {"n_estimators": 20, "verbose": -1, "n_jobs": 1},
    "xgboost": {"n_estimators": 20, "n_jobs": 1},
    "random_forest": {"n_estimators": 10, "max_depth": 6, "n_jobs": 1},
    "hist_gradient_boosting": {"max_iter": 10},
}


def _table(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    # "violet" is rare (under 10 training rows): it shares the infrequent one-hot column.
    colour = rng.choice(["red", "green", "blue", "violet"], size=rows, p=[0.4, 0.3, 0.28, 0.02])
    shape = rng.choice(["square", "circle"], size=rows)
    logit = 1.8 * x1 - 1.2 * x2 + np.where(colour == "red", 1.5, -0.5)
    score = x1 + np.where(shape == "circle", 1.0, -1.0) + rng.normal(scale=0.3, size=rows)
    frame = pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "colour": pd.Series(colour, dtype="str"),
            "shape": pd.Series(shape, dtype="str"),
            "binary": pd.Series(np.where(logit > 0, "yes", "no"), dtype="str"),
            "multiclass": pd.Series(
                np.select([score < -0.7, score < 0.7], ["low", "mid"], "high"), dtype="str"
            ),
            "value": 3.0 * x1 - 2.0 * x2 + np.where(colour == "blue", 4.0, 0.0),
        }
    )
    frame.loc[frame.index % 11 == 0, "x2"] = np.nan
    frame.loc[frame.index % 13 == 0, "colour"] = np.nan
    return frame


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return _table(400, seed=1)


@pytest.fixture(scope="module")
def holdout() -> pd.DataFrame:
    """Held-out rows with a rare level, an unseen level and missing values of both kinds."""
    frame = _table(120, seed=2)
    frame.loc[0, "colour"] = "ultraviolet"
    frame.loc[1, "colour"] = "violet"
    frame.loc[2, ["x1", "x2"]] = np.nan
    frame.loc[2, ["colour", "shape"]] = np.nan
    return frame


def _fit(model: str, task: str, train: pd.DataFrame) -> Any:
    schema = TableSchema(
        target=TARGETS[task], numeric=("x1", "x2"), categorical=("colour", "shape")
    )
    spec = ModelSpec(type=model, params=SMALL.get(model, {}))
    pipeline = build_pipeline(spec, schema=schema, task=task, seed=0)  # type: ignore[arg-type]
    return pipeline.fit(train[list(schema.features)], train[schema.target])


def _onnx_model(pipeline: Any, export: OnnxExport) -> OnnxModel:
    assert export.model is not None
    classes = tuple(pipeline.classes_.tolist()) if hasattr(pipeline, "classes_") else ()
    return OnnxModel.load(export.model, schema_from_pipeline(pipeline), classes)


CASES = [
    ("lightgbm", "binary"),
    ("xgboost", "binary"),
    ("random_forest", "binary"),
    ("logistic_regression", "binary"),
    ("lightgbm", "multiclass"),
    ("xgboost", "multiclass"),
    ("logistic_regression", "multiclass"),
    ("lightgbm", "regression"),
    ("xgboost", "regression"),
    ("random_forest", "regression"),
    ("ridge", "regression"),
    ("linear_regression", "regression"),
]


@pytest.mark.parametrize(("model", "task"), CASES)
def test_export_is_verified_and_answers_as_the_pipeline(
    model: str, task: str, train: pd.DataFrame, holdout: pd.DataFrame
) -> None:
    pipeline = _fit(model, task, train)
    features = holdout[list(pipeline.feature_names_in_)]
    export = export_onnx(pipeline, features, tolerance=TOLERANCE, parity_rows=1000)

    assert export.status == "verified", export.reason
    assert export.reason is None and export.max_abs_diff is not None
    assert export.max_abs_diff <= TOLERANCE
    assert export.rows > len(holdout)  # synthetic missing/unseen rows were compared too
    onnx = _onnx_model(pipeline, export)
    got = onnx.predict_columns(frame_columns(features), probabilities=True)
    expected = pipeline.predict(features).tolist()
    if task == "regression":
        spread = float(np.std(expected))
        assert np.allclose(got.predictions, expected, rtol=0, atol=TOLERANCE * spread)
        assert got.probabilities is None
    else:
        assert got.predictions == expected
        assert {type(v) for v in got.predictions} == {type(v) for v in expected}
        assert np.allclose(got.probabilities, pipeline.predict_proba(features), atol=TOLERANCE)


def test_scaled_linear_model_keeps_float64_end_to_end(
    train: pd.DataFrame, holdout: pd.DataFrame
) -> None:
    pipeline = _fit("logistic_regression", "binary", train)
    export = export_onnx(pipeline, holdout, tolerance=TOLERANCE, parity_rows=50)

    assert export.precision == "float64"
    assert export.max_abs_diff is not None and export.max_abs_diff < 1e-12


def test_hist_gradient_boosting_is_unsupported_with_a_reason(
    train: pd.DataFrame, holdout: pd.DataFrame
) -> None:
    pipeline = _fit("hist_gradient_boosting", "binary", train)
    export = export_onnx(pipeline, holdout, tolerance=TOLERANCE, parity_rows=100)

    # skl2onnx 1.20 with onnx 1.23: "Expected an int, got a boolean" building the trees.
    assert export.status == "unsupported"
    assert export.model is None and not export.verified
    assert export.reason is not None and "HistGradientBoostingClassifier" in export.reason
    assert "\n" not in export.reason


def test_parity_beyond_tolerance_fails_and_keeps_the_graph(
    train: pd.DataFrame, holdout: pd.DataFrame
) -> None:
    pipeline = _fit("lightgbm", "binary", train)
    export = export_onnx(pipeline, holdout, tolerance=1e-300, parity_rows=100)

    assert export.status == "failed" and not export.verified
    assert export.precision == "float32"
    assert export.model is not None  # kept for inspection, never served
    assert export.reason is not None and "differ" in export.reason


def test_parity_rows_bounds_the_comparison(train: pd.DataFrame, holdout: pd.DataFrame) -> None:
    pipeline = _fit("logistic_regression", "binary", train)
    export = export_onnx(pipeline, holdout, tolerance=TOLERANCE, parity_rows=10)

    assert 10 < export.rows <= 10 + 6  # plus up to three missing and three unseen rows


def test_to_dict_is_json_without_the_model(train: pd.DataFrame, holdout: pd.DataFrame) -> None:
    pipeline = _fit("logistic_regression", "binary", train)
    export = export_onnx(pipeline, holdout, tolerance=TOLERANCE, parity_rows=20)

    data = json.loads(json.dumps(export.to_dict()))
    assert data["status"] == "verified" and data["tolerance"] == TOLERANCE
    assert data["model_bytes"] == len(export.model or b"") > 0
    assert "model" not in data
    assert "model=" not in repr(export)


def test_from_dict_restores_what_to_dict_wrote(train: pd.DataFrame, holdout: pd.DataFrame) -> None:
    pipeline = _fit("logistic_regression", "binary", train)
    export = export_onnx(pipeline, holdout, tolerance=TOLERANCE, parity_rows=20)

    stored = json.loads(json.dumps(export.to_dict()))
    restored = OnnxExport.from_dict(stored, model=export.model)
    assert restored == replace(export, export_seconds=round(export.export_seconds, 3))


def test_empty_sample_is_unsupported_not_an_error(train: pd.DataFrame) -> None:
    pipeline = _fit("logistic_regression", "binary", train)
    export = export_onnx(pipeline, train.head(0), tolerance=TOLERANCE, parity_rows=10)

    assert export.status == "unsupported"
    assert export.reason is not None and "held-out" in export.reason


NAMES = ["education-num", "hours per week", "capital.gain", "a_b", "a-b", "1st", "größe", 'q"t']


def test_any_column_name_keeps_the_fast_path() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({name: rng.normal(size=400) for name in NAMES[:-1]})
    frame[NAMES[-1]] = pd.Series(rng.choice(["x", "y", "z"], 400), dtype="str")
    target = (frame["education-num"] + frame["a-b"] > 0).map({True: "yes", False: "no"})
    schema = TableSchema(target="t", numeric=tuple(NAMES[:-1]), categorical=(NAMES[-1],))
    spec = ModelSpec(type="lightgbm", params={"n_estimators": 20, "verbose": -1})
    pipeline = build_pipeline(spec, schema=schema, task="binary", seed=0).fit(frame, target)
    export = export_onnx(pipeline, frame, tolerance=1e-4, parity_rows=100)
    assert export.status == "verified", export.reason
    model = OnnxModel.load(export.model or b"", schema_from_pipeline(pipeline), ("no", "yes"))
    assert [i.name for i in model.scorer.inputs] == NAMES
