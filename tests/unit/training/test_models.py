"""The model factory: short names, import paths, seeds, and the errors a user can hit."""

from __future__ import annotations

import pytest

from conveyor.config import ModelSpec
from conveyor.errors import TrainingError
from conveyor.training.label_encoding import LabelEncodedClassifier
from conveyor.training.models import (
    MODEL_TYPES,
    build_estimator,
    default_model,
    estimator_params,
    needs_scaling,
)


@pytest.mark.parametrize("name", sorted(MODEL_TYPES))
def test_every_short_name_builds_for_the_tasks_it_supports(name: str) -> None:
    from sklearn.base import is_classifier, is_regressor

    classifier_path, regressor_path = MODEL_TYPES[name]
    if classifier_path:
        for task in ("binary", "multiclass"):
            assert is_classifier(build_estimator(ModelSpec(type=name), task=task, seed=1))
    if regressor_path:
        assert is_regressor(build_estimator(ModelSpec(type=name), task="regression", seed=1))


def test_import_path_builds_that_class_with_params_and_seed() -> None:
    spec = ModelSpec(type="sklearn.ensemble.ExtraTreesClassifier", params={"n_estimators": 7})
    estimator = build_estimator(spec, task="binary", seed=123)
    assert type(estimator).__name__ == "ExtraTreesClassifier"
    assert estimator.n_estimators == 7
    assert estimator.random_state == 123


def test_seed_does_not_override_an_explicit_random_state() -> None:
    spec = ModelSpec(type="random_forest", params={"random_state": 5})
    assert build_estimator(spec, task="regression", seed=123).random_state == 5


def test_torch_mlp_gets_the_seed() -> None:
    assert build_estimator(ModelSpec(type="torch_mlp"), task="binary", seed=9).seed == 9


def test_xgboost_classifier_is_wrapped_to_keep_original_labels() -> None:
    estimator = build_estimator(ModelSpec(type="xgboost"), task="binary", seed=0)
    assert isinstance(estimator, LabelEncodedClassifier)
    assert estimator_params(estimator)["random_state"] == 0
    regressor = build_estimator(ModelSpec(type="xgboost"), task="regression", seed=0)
    assert type(regressor).__name__ == "XGBRegressor"


def test_lightgbm_is_quiet_unless_asked() -> None:
    assert build_estimator(ModelSpec(type="lightgbm"), task="binary", seed=0).verbose == -1
    loud = ModelSpec(type="lightgbm", params={"verbose": 1})
    assert build_estimator(loud, task="binary", seed=0).verbose == 1


def test_default_model_is_modest_lightgbm_for_every_task() -> None:
    for task in ("binary", "multiclass", "regression"):
        spec = default_model(task)
        assert spec.type == "lightgbm"
        assert spec.params["n_estimators"] == 300
        assert spec.params["verbose"] == -1
        build_estimator(spec, task=task, seed=0)


@pytest.mark.parametrize(
    ("model_type", "expected"),
    [
        ("logistic_regression", True),
        ("ridge", True),
        ("torch_mlp", True),
        ("lightgbm", False),
        ("random_forest", False),
        ("sklearn.linear_model.Lasso", True),
        ("sklearn.ensemble.ExtraTreesRegressor", False),
    ],
)
def test_needs_scaling(model_type: str, expected: bool) -> None:
    assert needs_scaling(ModelSpec(type=model_type)) is expected


@pytest.mark.parametrize(
    ("model_type", "params", "task", "message"),
    [
        ("gradient_magic", {}, "binary", "unknown model type 'gradient_magic'"),
        ("sklearn.nope.Forest", {}, "binary", "cannot import module 'sklearn.nope'"),
        ("sklearn.ensemble.NoSuchForest", {}, "binary", "has no 'NoSuchForest'"),
        ("collections.OrderedDict", {}, "binary", "not a scikit-learn-API estimator"),
        ("sklearn.ensemble.RandomForestRegressor", {}, "binary", "not a classifier"),
        ("sklearn.ensemble.RandomForestClassifier", {}, "regression", "not a regressor"),
        ("ridge", {}, "binary", "'ridge' does not support classification"),
        ("logistic_regression", {}, "regression", "does not support regression"),
        ("sklearn.linear_model.RidgeClassifier", {}, "binary", "has no predict_proba"),
        ("random_forest", {"n_estimatorz": 3}, "binary", "unknown parameter(s) 'n_estimatorz'"),
    ],
)
def test_build_errors_name_the_problem(
    model_type: str, params: dict[str, int], task: str, message: str
) -> None:
    with pytest.raises(TrainingError) as info:
        build_estimator(ModelSpec(type=model_type, params=params), task=task, seed=0)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_torch_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the optional extra (simulated: torch made unimportable), fit says what to do."""
    import numpy as np

    monkeypatch.setitem(__import__("sys").modules, "torch", None)
    estimator = build_estimator(ModelSpec(type="torch_mlp"), task="binary", seed=0)
    with pytest.raises(TrainingError, match=r"pip install 'conveyor-mlops\[torch\]'"):
        estimator.fit(np.zeros((4, 2)), ["a", "b", "a", "b"])


def imported_after(specs: str) -> set[str]:
    """The model libraries a fresh interpreter holds after ``import_model_libraries``."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from conveyor.config import ModelSpec\n"
        "from conveyor.training.models import import_model_libraries\n"
        f"import_model_libraries([ModelSpec(type=t) for t in {specs}])\n"
        "libraries = ('lightgbm', 'xgboost', 'sklearn.ensemble')\n"
        "print(' '.join(m for m in libraries if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_model_libraries_imports_each_candidates_library() -> None:
    assert imported_after("['lightgbm', 'sklearn.ensemble.ExtraTreesClassifier']") >= {
        "lightgbm",
        "sklearn.ensemble",
    }


def test_import_model_libraries_leaves_an_unimportable_path_to_the_load() -> None:
    assert "lightgbm" in imported_after("['no_such_module.Model', 'lightgbm']")
