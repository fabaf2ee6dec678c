"""Model factory: from a ``ModelSpec`` (short name or import path + params) to an estimator."""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Iterable
from typing import Any

from conveyor.config import ModelSpec
from conveyor.data.schema import Task
from conveyor.errors import TrainingError

__all__ = [
    "MODEL_TYPES",
    "build_estimator",
    "default_model",
    "estimator_params",
    "import_model_libraries",
    "needs_scaling",
]

log = logging.getLogger(__name__)

_TORCH = "conveyor.training.torch_mlp"

# Short name -> (classifier class path, regressor class path); None: not for that task.
MODEL_TYPES: dict[str, tuple[str | None, str | None]] = {
    "lightgbm": ("lightgbm.LGBMClassifier", "lightgbm.LGBMRegressor"),
    "xgboost": ("xgboost.XGBClassifier", "xgboost.XGBRegressor"),
    "random_forest": (
        "sklearn.ensemble.RandomForestClassifier",
        "sklearn.ensemble.RandomForestRegressor",
    ),
    "extra_trees": (
        "sklearn.ensemble.ExtraTreesClassifier",
        "sklearn.ensemble.ExtraTreesRegressor",
    ),
    "hist_gradient_boosting": (
        "sklearn.ensemble.HistGradientBoostingClassifier",
        "sklearn.ensemble.HistGradientBoostingRegressor",
    ),
    "logistic_regression": ("sklearn.linear_model.LogisticRegression", None),
    "ridge": (None, "sklearn.linear_model.Ridge"),
    "linear_regression": (None, "sklearn.linear_model.LinearRegression"),
    "torch_mlp": (f"{_TORCH}.TorchMLPClassifier", f"{_TORCH}.TorchMLPRegressor"),
}

# Models whose fit depends on the scale of their inputs.
_SCALED_TYPES = frozenset({"logistic_regression", "ridge", "linear_regression", "torch_mlp"})
_SCALED_MODULES = (
    "sklearn.linear_model",
    "sklearn.svm",
    "sklearn.neighbors",
    "sklearn.neural_network",
    _TORCH,
)
# Defaults applied unless the spec sets them: keep library chatter out of the run's output.
_QUIET_PARAMS: dict[str, dict[str, Any]] = {"lightgbm.": {"verbose": -1}}
# Classifiers that only accept labels 0..n-1 (wrapped in LabelEncodedClassifier).
_NEEDS_ENCODED_LABELS = ("xgboost.",)

# Why these values: see default_model's docstring.
_DEFAULT_PARAMS: dict[str, Any] = {
    "n_estimators": 300,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "verbose": -1,
    "n_jobs": 2,
}


def default_model(task: Task) -> ModelSpec:
    """The model trained when the config lists none: LightGBM with modest parameters.

    LightGBM is accurate on tabular data without tuning, fast from a few thousand to
    millions of rows, and deterministic for a fixed seed. 300 trees at learning rate 0.05
    with 31 leaves is a conservative setting that neither underfits typical tables nor
    takes long; ``verbose=-1`` silences LightGBM's console output and ``n_jobs=2`` keeps it
    from oversubscribing small machines. The same spec serves every task: LightGBM picks
    the binary, multiclass or regression objective from the estimator class and labels.

    Args:
        task: the learning task.

    Returns:
        A ``ModelSpec`` of type ``lightgbm``.
    """
    del task  # one spec fits every task; the class is chosen by build_estimator
    return ModelSpec(type="lightgbm", params=dict(_DEFAULT_PARAMS))


def needs_scaling(spec: ModelSpec) -> bool:
    """Whether the model wants standardised numeric inputs (linear models, networks)."""
    if spec.type in MODEL_TYPES:
        return spec.type in _SCALED_TYPES
    return spec.type.startswith(_SCALED_MODULES)


def build_estimator(spec: ModelSpec, *, task: Task, seed: int) -> Any:
    """Instantiate the estimator a spec describes, for a task, with its seed fixed.

    The seed goes to ``random_state`` (or ``seed``) unless the spec's params set it;
    LightGBM gets ``verbose=-1`` unless set, so it does not write to stdout.
    Classifiers that only take integer labels (XGBoost) come wrapped in a
    ``LabelEncodedClassifier`` so they fit and predict the original labels.

    Args:
        spec: model type (short name or ``module.Class`` path) and keyword params.
        task: the learning task; picks the classifier or the regressor.
        seed: random seed.

    Returns:
        An unfitted scikit-learn-API estimator.

    Raises:
        TrainingError: unknown type, unimportable path, not an estimator, wrong kind of
            estimator for the task, a classifier without ``predict_proba``, or parameters
            the class does not take.
    """
    path = _class_path(spec.type, task)
    cls = _import_class(spec.type, path)
    params = dict(spec.params)
    _check_params(spec.type, cls, params)
    for prefix, quiet in _QUIET_PARAMS.items():
        if path.startswith(prefix):
            params = {**quiet, **params}
    seed_param = _seed_param(cls)
    if seed_param and seed_param not in params:
        params[seed_param] = seed
    try:
        estimator = cls(**params)
    except (TypeError, ValueError) as exc:
        raise TrainingError(f"model {spec.type!r}: bad parameters: {exc}") from exc
    _check_kind(spec.type, estimator, task)
    if task != "regression" and path.startswith(_NEEDS_ENCODED_LABELS):
        from conveyor.training.label_encoding import LabelEncodedClassifier

        return LabelEncodedClassifier(estimator)
    return estimator


def import_model_libraries(specs: Iterable[ModelSpec]) -> None:
    """Import the libraries of these models and of the pipeline around them (most of a
    second), ahead of loading a trained one; an import that fails is left for the load
    to report.

    Args:
        specs: the candidate models.
    """
    import sklearn.compose
    import sklearn.impute
    import sklearn.pipeline
    import sklearn.preprocessing  # noqa: F401

    import conveyor_cleaning.cleaner  # noqa: F401

    for spec in specs:
        for path in MODEL_TYPES.get(spec.type, (spec.type,)):
            module = (path or "").rpartition(".")[0]
            if not module:
                continue
            try:
                importlib.import_module(module)
            except Exception as exc:
                log.debug("importing %s ahead failed: %s", module, exc)


def estimator_params(estimator: Any) -> dict[str, Any]:
    """The parameters an estimator was built with, unwrapping ``LabelEncodedClassifier``."""
    inner = getattr(estimator, "estimator", None)
    if inner is not None and type(estimator).__name__ == "LabelEncodedClassifier":
        estimator = inner
    params: dict[str, Any] = estimator.get_params(deep=False)
    return params


def _class_path(model_type: str, task: Task) -> str:
    if model_type in MODEL_TYPES:
        classifier, regressor = MODEL_TYPES[model_type]
        path = regressor if task == "regression" else classifier
        if path is None:
            kind = "regression" if task == "regression" else "classification"
            raise TrainingError(f"model {model_type!r} does not support {kind} (task {task})")
        return path
    if "." not in model_type:
        raise TrainingError(
            f"unknown model type {model_type!r}; use one of {', '.join(MODEL_TYPES)}"
            " or an import path such as sklearn.ensemble.ExtraTreesClassifier"
        )
    return model_type


def _import_class(model_type: str, path: str) -> type[Any]:
    module_name, _, class_name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if module_name == _TORCH or exc.name == "torch":
            raise TrainingError(
                "torch_mlp needs the optional extra: pip install 'conveyor-mlops[torch]'"
            ) from exc
        raise TrainingError(f"model {model_type!r}: cannot import module {module_name!r}") from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        raise TrainingError(f"model {model_type!r}: {module_name!r} has no {class_name!r}")
    if not (
        isinstance(cls, type) and all(hasattr(cls, a) for a in ("fit", "predict", "get_params"))
    ):
        raise TrainingError(
            f"model {model_type!r}: {path} is not a scikit-learn-API estimator class"
            " (needs fit, predict and get_params)"
        )
    return cls


def _init_params(cls: type[Any]) -> dict[str, inspect.Parameter]:
    try:
        return dict(inspect.signature(cls.__init__).parameters)
    except (TypeError, ValueError):  # builtins without a signature
        return {}


def _seed_param(cls: type[Any]) -> str | None:
    """The name under which the class takes its random seed, if it takes one."""
    names = set(_init_params(cls))
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in _init_params(cls).values()):
        try:  # XGBoost declares most params through **kwargs; get_params lists them
            names |= set(cls().get_params(deep=False))
        except Exception:  # a class that needs args: no extra names
            log.debug("cannot list the params of %s", cls.__name__)
    return next((name for name in ("random_state", "seed") if name in names), None)


def _check_params(model_type: str, cls: type[Any], params: dict[str, Any]) -> None:
    """Name parameters the class does not take (classes taking **kwargs accept all)."""
    accepted = _init_params(cls)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        return
    unknown = sorted(set(params) - set(accepted) - {"self"})
    if unknown:
        raise TrainingError(
            f"model {model_type!r}: unknown parameter(s) {', '.join(map(repr, unknown))}"
            f" for {cls.__module__}.{cls.__name__}"
        )


def _check_kind(model_type: str, estimator: Any, task: Task) -> None:
    from sklearn.base import is_classifier, is_regressor

    name = type(estimator).__name__
    if task == "regression" and not is_regressor(estimator):
        raise TrainingError(f"model {model_type!r}: {name} is not a regressor (task regression)")
    if task != "regression" and not is_classifier(estimator):
        raise TrainingError(f"model {model_type!r}: {name} is not a classifier (task {task})")
    if task != "regression" and not hasattr(estimator, "predict_proba"):
        raise TrainingError(
            f"model {model_type!r}: {name} has no predict_proba; classification metrics"
            " and serving need class probabilities"
        )
