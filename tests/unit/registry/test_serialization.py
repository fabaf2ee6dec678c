"""Serialisation is chosen deliberately: skops with an allowlist, cloudpickle only for torch."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from conveyor.errors import RegistryError
from conveyor.registry.serialization import (
    TRUSTED_TYPES,
    SerializationChoice,
    choose_serialization,
    is_trusted_type,
    pip_requirements,
    referenced_types,
)


class LocalScaler(StandardScaler):  # type: ignore[misc]
    """A class defined outside any trusted package (here: the test module)."""


class Identity(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    def fit(self, x: Any, y: Any = None) -> Identity:
        return self

    def transform(self, x: Any) -> Any:
        return x


@pytest.fixture(scope="module")
def frame() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    n = 200
    x = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "hours": rng.normal(38, 5, n),
            "job": pd.Series(rng.choice(["a", "b", "c"], n), dtype="str"),
        }
    )
    y = pd.Series((x["age"] > 40).astype(int) ^ (x["job"] == "a").astype(int), name="y")
    return x, y


def fitted(estimator: Any, frame: tuple[pd.DataFrame, pd.Series], scaler: Any = None) -> Pipeline:
    pre = ColumnTransformer(
        [
            ("num", scaler if scaler is not None else StandardScaler(), ["age", "hours"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["job"]),
        ]
    )
    return Pipeline([("preprocess", pre), ("model", estimator)]).fit(*frame)


def roundtrip(pipeline: Pipeline, choice: SerializationChoice) -> Any:
    return skops.io.loads(skops.io.dumps(pipeline), trusted=list(choice.trusted_types))


def estimators() -> dict[str, Any]:
    import lightgbm
    import xgboost

    return {
        "hist_gradient_boosting": HistGradientBoostingClassifier(max_iter=5),
        "lightgbm": lightgbm.LGBMClassifier(n_estimators=5, verbose=-1),
        "xgboost": xgboost.XGBClassifier(n_estimators=5),
    }


@pytest.mark.parametrize("kind", ["hist_gradient_boosting", "lightgbm", "xgboost"])
def test_skops_round_trips_our_estimators_with_identical_predictions(
    kind: str, frame: tuple[pd.DataFrame, pd.Series]
) -> None:
    pipeline = fitted(estimators()[kind], frame)
    choice = choose_serialization(pipeline)
    assert choice.format == "skops"
    assert all(is_trusted_type(t) for t in choice.trusted_types)
    loaded = roundtrip(pipeline, choice)
    np.testing.assert_array_equal(loaded.predict_proba(frame[0]), pipeline.predict_proba(frame[0]))


def test_skops_allowlist_names_the_boosters(frame: tuple[pd.DataFrame, pd.Series]) -> None:
    found = {kind: choose_serialization(fitted(est, frame)) for kind, est in estimators().items()}
    assert "lightgbm.basic.Booster" in found["lightgbm"].trusted_types
    assert "xgboost.core.Booster" in found["xgboost"].trusted_types
    hgb = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
    assert hgb in found["hist_gradient_boosting"].trusted_types
    assert "lightgbm" in found["lightgbm"].packages


def test_skops_trusts_only_exact_types_on_the_list(frame: tuple[pd.DataFrame, pd.Series]) -> None:
    for choice in (choose_serialization(fitted(est, frame)) for est in estimators().values()):
        assert set(choice.trusted_types) <= TRUSTED_TYPES


def test_a_type_skops_would_trust_off_the_list_is_refused_by_name(
    frame: tuple[pd.DataFrame, pd.Series], monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.registry import serialization

    monkeypatch.setattr(serialization, "TRUSTED_TYPES", TRUSTED_TYPES - {"xgboost.core.Booster"})
    with pytest.raises(RegistryError, match=r"trust type xgboost\.core\.Booster.*trusted_types"):
        choose_serialization(fitted(estimators()["xgboost"], frame))


def test_the_project_may_trust_one_more_exact_type(
    frame: tuple[pd.DataFrame, pd.Series], monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.registry import serialization

    monkeypatch.setattr(serialization, "TRUSTED_TYPES", TRUSTED_TYPES - {"xgboost.core.Booster"})
    pipeline = fitted(estimators()["xgboost"], frame)
    choice = choose_serialization(pipeline, trusted_types=("xgboost.core.Booster",))
    assert "xgboost.core.Booster" in choice.trusted_types


def test_numpy_function_in_pipeline_is_trusted(frame: tuple[pd.DataFrame, pd.Series]) -> None:
    pipeline = fitted(
        HistGradientBoostingClassifier(max_iter=3), frame, scaler=FunctionTransformer(np.tanh)
    )
    choice = choose_serialization(pipeline)
    assert choice.format == "skops"


@pytest.mark.parametrize(
    ("scaler", "named"),
    [
        (FunctionTransformer(lambda x: x), "<lambda>"),
        (LocalScaler(), "LocalScaler"),
    ],
)
def test_types_from_untrusted_modules_are_refused_by_name(
    scaler: Any, named: str, frame: tuple[pd.DataFrame, pd.Series]
) -> None:
    pipeline = fitted(HistGradientBoostingClassifier(max_iter=3), frame, scaler=scaler)
    with pytest.raises(RegistryError, match=r"cannot persist the model: type \S*" + named):
        choose_serialization(pipeline)


def test_builtin_functions_other_than_types_are_refused() -> None:
    pipeline = Pipeline([("f", FunctionTransformer(eval)), ("model", LinearRegression())])
    with pytest.raises(RegistryError, match=r"type builtins\.eval is from an untrusted module"):
        choose_serialization(pipeline)


def test_unfitted_custom_class_is_found_in_nested_steps() -> None:
    pipeline = Pipeline(
        [("outer", Pipeline([("inner", Identity())])), ("model", LinearRegression())]
    )
    assert f"{__name__}.Identity" in referenced_types(pipeline)
    with pytest.raises(RegistryError, match="Identity"):
        choose_serialization(pipeline)


def test_torch_objects_need_the_projects_consent_to_pickle() -> None:
    torch = pytest.importorskip("torch", reason="torch is the optional [torch] extra")
    pipeline = Pipeline([("model", torch.nn.Linear(2, 1))])
    with pytest.raises(RegistryError, match=r"registry\.allow_pickle: true"):
        choose_serialization(pipeline)


def test_torch_objects_are_saved_with_cloudpickle_when_allowed_and_say_why() -> None:
    torch = pytest.importorskip("torch", reason="torch is the optional [torch] extra")
    pipeline = Pipeline([("model", torch.nn.Linear(2, 1))])
    choice = choose_serialization(pipeline, allow_pickle=True)
    assert choice.format == "cloudpickle"
    assert choice.trusted_types == ()
    assert choice.reason.startswith("cloudpickle: skops cannot persist torch.")
    assert "torch" in choice.packages


def test_skops_failure_without_a_shipped_type_refuses_pickle(
    frame: tuple[pd.DataFrame, pd.Series], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(obj: Any, **kwargs: Any) -> bytes:
        raise TypeError("cannot persist this")

    monkeypatch.setattr(skops.io, "dumps", broken)
    pipeline = fitted(HistGradientBoostingClassifier(max_iter=3), frame)
    with pytest.raises(RegistryError, match=r"skops failed .*refusing pickle"):
        choose_serialization(pipeline)


def test_pip_requirements_pin_installed_versions(frame: tuple[pd.DataFrame, pd.Series]) -> None:
    choice = choose_serialization(fitted(estimators()["xgboost"], frame))
    pins = pip_requirements(choice)
    expected = {
        "scikit-learn": metadata.version("scikit-learn"),
        "pandas": metadata.version("pandas"),
        "skops": metadata.version("skops"),
    }
    for dist, version in expected.items():
        assert f"{dist}=={version}" in pins
    assert any(p.startswith("xgboost") and "==" in p for p in pins)
    assert all("+" not in p for p in pins)


def test_pip_requirements_refuse_a_missing_package() -> None:
    choice = SerializationChoice("skops", (), "test", packages=("no_such_package_xyz",))
    with pytest.raises(RegistryError, match="no_such_package_xyz"):
        pip_requirements(choice)


@pytest.mark.parametrize(
    ("name", "builtins_ok", "trusted"),
    [
        ("sklearn.tree._tree.Tree", False, True),
        ("collections.OrderedDict", False, True),
        ("conveyor.training.torch_mlp.TorchMLPClassifier", False, True),
        ("builtins.int", True, True),
        ("builtins.eval", False, False),
        ("os.system", False, False),
        ("__main__.Thing", True, False),
        ("sklearnx.Evil", False, False),
    ],
)
def test_is_trusted_type(name: str, builtins_ok: bool, trusted: bool) -> None:
    assert is_trusted_type(name, allow_builtins=builtins_ok) is trusted


def test_choice_to_dict() -> None:
    choice = SerializationChoice("skops", ("a.B",), "why", ("sklearn",), ("conveyor_cleaning",))
    assert choice.to_dict() == {
        "format": "skops",
        "trusted_types": ["a.B"],
        "reason": "why",
        "packages": ["sklearn"],
        "code": ["conveyor_cleaning"],
    }
