"""How a fitted pipeline is persisted: skops with an exact allowlist, pickle only by opt-in.

The decision, made once per model and recorded as the tag ``conveyor.serialization``:

1. Every class and function the pipeline references is collected by walking its
   estimators (and anything from ``conveyor.*`` or ``torch.nn``). A type from a module
   outside :data:`TRUSTED_MODULES` (for example a class defined in ``__main__`` or a
   lambda in a ``FunctionTransformer``) is refused with :class:`RegistryError` naming the
   type: nothing from an untrusted module is ever persisted.
2. **skops** is the default. skops refuses on load any type outside its built-in
   allowlist (scikit-learn estimators, numpy and scipy basics). The types it reports as
   untrusted are accepted only when they are named exactly in :data:`TRUSTED_TYPES`
   (the boosters, trees and Conveyor's own steps) or in the project's
   ``registry.trusted_types``, and are then stored as the model's
   ``skops_trusted_types``. Measured here: skops round-trips Pipelines holding
   scikit-learn estimators, LightGBM and XGBoost with identical predictions.
3. **cloudpickle** only where skops cannot persist a type we ship (torch tensors:
   ``Cannot directly construct TensorBase``), and only when the project opts in with
   ``registry.allow_pickle: true``: loading a pickle runs code from the artifact. The
   version then carries ``conveyor.pickle_risk`` saying so. If skops fails on anything
   else, the model is refused: there is no silent fallback to pickle.

Code shipped with the model: ``conveyor_cleaning`` (the value cleaning every pipeline
starts with) is saved inside the model as MLflow ``code_paths``, not pinned as a
requirement, so the model loads where Conveyor is not installed.

Loading re-checks the stored allowlist against the same exact types, after the model's
files were checked against their signature (``conveyor.registry.signing``).
"""

from __future__ import annotations

import importlib
import logging
import sys
import types
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from typing import Any, Literal

from conveyor.errors import RegistryError

__all__ = [
    "CLOUDPICKLE_MODULES",
    "PICKLE_RISK",
    "SHIPPED_CODE",
    "TRUSTED_MODULES",
    "TRUSTED_STDLIB_TYPES",
    "TRUSTED_TYPES",
    "SerializationChoice",
    "choose_serialization",
    "code_paths",
    "import_skops",
    "is_trusted_type",
    "pin_requirements_ready",
    "pip_requirements",
    "referenced_types",
]

logger = logging.getLogger(__name__)

TRUSTED_MODULES: tuple[str, ...] = (
    "sklearn",
    "numpy",
    "scipy",
    "lightgbm",
    "xgboost",
    "torch",
    "conveyor",
    "conveyor_cleaning",
)
"""Top-level packages whose types may be persisted and loaded."""

SHIPPED_CODE: tuple[str, ...] = ("conveyor_cleaning",)
"""Packages saved inside the model (MLflow ``code_paths``) rather than pinned as requirements."""

TRUSTED_STDLIB_TYPES: frozenset[str] = frozenset(
    {"collections.OrderedDict", "collections.defaultdict"}
)
"""Standard-library types skops lists as untrusted that estimators hold (LightGBM: OrderedDict)."""

TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "collections.OrderedDict",
        "conveyor.training.label_encoding.LabelEncodedClassifier",
        "conveyor_cleaning.cleaner.ValueCleaner",
        "lightgbm.basic.Booster",
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRegressor",
        "lightgbm.sklearn.LGBMRanker",
        "numpy.dtype",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.tree._tree.Tree",
        "xgboost.core.Booster",
        "xgboost.sklearn.XGBClassifier",
        "xgboost.sklearn.XGBRegressor",
        "xgboost.sklearn.XGBRanker",
    }
)
"""Exact types skops is told to trust beyond its own allowlist: what the estimators
Conveyor builds hold, found by saving a pipeline of every model type for every task."""

PICKLE_RISK = (
    "saved with cloudpickle because skops cannot persist it: loading this version runs code"
    " from its artifact; allowed by registry.allow_pickle in the project config"
)
"""The ``conveyor.pickle_risk`` tag a pickled version carries."""

CLOUDPICKLE_MODULES: tuple[str, ...] = ("torch", "conveyor")
"""Packages we ship whose objects justify cloudpickle when skops cannot persist them."""

# Packages every saved pipeline needs to load (a ColumnTransformer is fed pandas frames).
_BASE_PACKAGES = ("sklearn", "numpy", "scipy", "pandas")
_MAX_OBJECT_ARRAY_ITEMS = 10_000

Format = Literal["skops", "cloudpickle"]


@dataclass(frozen=True)
class SerializationChoice:
    """How a pipeline will be saved, and why.

    Attributes:
        format: ``"skops"`` or ``"cloudpickle"`` (MLflow's ``serialization_format``).
        trusted_types: types skops must be told to trust on load (empty for cloudpickle).
        reason: one human line explaining the choice.
        packages: top-level packages loading the model imports (pinned by ``pip_requirements``).
        code: packages saved with the model as code (see :data:`SHIPPED_CODE`).
    """

    format: Format
    trusted_types: tuple[str, ...]
    reason: str
    packages: tuple[str, ...] = ()
    code: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "format": self.format,
            "trusted_types": list(self.trusted_types),
            "reason": self.reason,
            "packages": list(self.packages),
            "code": list(self.code),
        }


def is_trusted_type(qualified_name: str, *, allow_builtins: bool = False) -> bool:
    """Whether a ``module.QualName`` may be persisted and loaded.

    Args:
        qualified_name: e.g. ``"lightgbm.basic.Booster"``.
        allow_builtins: accept ``builtins.*`` (true for instances such as ``int``; false for
            functions, so that ``builtins.eval`` is refused).

    Returns:
        True when the name's top-level package is trusted or it is an allowed stdlib type.
    """
    root = qualified_name.split(".", 1)[0]
    if root in TRUSTED_MODULES or qualified_name in TRUSTED_STDLIB_TYPES:
        return True
    return allow_builtins and root == "builtins"


def _qualname(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or "builtins"
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", repr(obj))
    return f"{module}.{name}"


def _is_walked(obj: Any) -> bool:
    """Objects whose attributes are inspected: estimators, torch modules, conveyor objects."""
    module = type(obj).__module__ or ""
    return (
        callable(getattr(obj, "get_params", None))
        or module.split(".", 1)[0] == "conveyor"
        or module.startswith("torch.nn")
    )


def _children(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, list | tuple | set | frozenset):
        return list(obj)
    if type(obj).__module__ == "numpy" and getattr(getattr(obj, "dtype", None), "kind", "") == "O":
        return list(obj.ravel()[:_MAX_OBJECT_ARRAY_ITEMS])
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict) and _is_walked(obj):
        return list(state.values())
    return []


def referenced_types(obj: Any) -> dict[str, bool]:
    """Every class and function an object graph references.

    Args:
        obj: usually a fitted sklearn Pipeline.

    Returns:
        ``{"module.QualName": allow_builtins}``: instances' types map to True (``int`` is
        fine), functions and classes held as values map to False.
    """
    found: dict[str, bool] = {}
    seen: set[int] = set()
    stack = [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, type):
            name = _qualname(item)
            found[name] = found.get(name, False) or name.startswith("builtins.")
            continue
        if isinstance(item, types.FunctionType | types.BuiltinFunctionType | types.MethodType):
            found.setdefault(_qualname(item), False)
            continue
        found[_qualname(type(item))] = True
        stack.extend(_children(item))
    return found


def _untrusted(found: dict[str, bool]) -> list[str]:
    return sorted(
        n for n, builtins_ok in found.items() if not is_trusted_type(n, allow_builtins=builtins_ok)
    )


def _packages(found: dict[str, bool], fmt: Format) -> tuple[str, ...]:
    roots = sorted(
        {name.split(".", 1)[0] for name in found} - {"builtins", "collections", *SHIPPED_CODE}
    )
    return tuple(dict.fromkeys((*_BASE_PACKAGES, fmt, *roots)))


def _code(found: dict[str, bool]) -> tuple[str, ...]:
    roots = {name.split(".", 1)[0] for name in found}
    return tuple(p for p in SHIPPED_CODE if p in roots)


def code_paths(choice: SerializationChoice) -> list[str]:
    """Folders of the packages a model ships as code (MLflow ``code_paths``).

    Args:
        choice: the serialisation choice.

    Returns:
        One package folder per entry of ``choice.code``.
    """
    import importlib
    from pathlib import Path

    return [str(Path(importlib.import_module(p).__file__ or "").parent) for p in choice.code]


class _Refuse:
    """A meta path finder refusing one package (and its submodules) while it is installed."""

    def __init__(self, package: str) -> None:
        self.package = package

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == self.package or name.startswith(f"{self.package}."):
            raise ImportError(f"{name} is not imported while skops lists scikit-learn")


def import_skops() -> types.ModuleType:
    """``skops.io``, imported without letting scikit-learn's estimator walk import torch.

    On import skops lists scikit-learn's estimators (``sklearn.utils.all_estimators``),
    which imports every scikit-learn package, ``sklearn.externals.array_api_compat.torch``
    included: with torch installed (the ``torch`` extra) that pulls torch into a process
    that does not need it, seconds of start-up and hundreds of MB in every process that
    saves or loads a model. While skops is imported, torch is refused (the walk skips
    packages that fail to import; the estimator list is the same); afterwards torch
    imports as usual. Where torch is already loaded, nothing is refused.
    """
    if "skops.io" not in sys.modules and "torch" not in sys.modules:
        refuse = _Refuse("torch")
        sys.meta_path.insert(0, refuse)
        try:
            importlib.import_module("skops.io")
        finally:
            sys.meta_path.remove(refuse)
    return importlib.import_module("skops.io")


def _skops_trusted_types(pipeline: Any, extra: frozenset[str]) -> list[str]:
    """Dump with skops, check what it would refuse, and load it back once."""
    skops_io: Any = import_skops()

    blob = skops_io.dumps(pipeline)
    needed = sorted(skops_io.get_untrusted_types(data=blob))
    refused = [name for name in needed if name not in TRUSTED_TYPES | extra]
    if refused:
        raise RegistryError(
            f"cannot persist the model: skops would have to trust type {refused[0]}, which"
            " is not on Conveyor's list of trusted types; if you trust it, add it to"
            " registry.trusted_types in the project config"
        )
    skops_io.loads(blob, trusted=needed)
    return needed


def choose_serialization(
    pipeline: Any, *, allow_pickle: bool = False, trusted_types: tuple[str, ...] = ()
) -> SerializationChoice:
    """Decide how to persist a fitted pipeline (see the module docstring).

    Args:
        pipeline: the fitted model, usually ``Pipeline([("preprocess", ...), ("model", ...)])``.
        allow_pickle: the project accepts cloudpickle where skops cannot persist a type
            we ship (``registry.allow_pickle``).
        trusted_types: exact types skops may trust beyond :data:`TRUSTED_TYPES`
            (``registry.trusted_types``).

    Returns:
        The format, the skops types to trust on load and the reason.

    Raises:
        RegistryError: the pipeline references a type from an untrusted module, skops
            would have to trust a type not on the list, or skops cannot persist it and
            pickle is not allowed (or nothing in it justifies pickle).
    """
    found = referenced_types(pipeline)
    untrusted = _untrusted(found)
    if untrusted:
        raise RegistryError(
            f"cannot persist the model: type {untrusted[0]} is from an untrusted module"
            f" (trusted: {', '.join(TRUSTED_MODULES)}); define it in an installed package"
            " or use a built-in estimator"
        )
    try:
        trusted = _skops_trusted_types(pipeline, frozenset(trusted_types))
    except RegistryError:
        raise
    except Exception as exc:
        return _cloudpickle_choice(found, exc, allow_pickle=allow_pickle)
    reason = "skops" + (f", trusting {', '.join(trusted)}" if trusted else " with default types")
    return SerializationChoice(
        "skops", tuple(trusted), reason, _packages(found, "skops"), _code(found)
    )


def _cloudpickle_choice(
    found: dict[str, bool], exc: Exception, *, allow_pickle: bool
) -> SerializationChoice:
    shipped = sorted(n for n in found if n.split(".", 1)[0] in CLOUDPICKLE_MODULES)
    error = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    if not shipped:
        raise RegistryError(f"cannot persist the model: skops failed ({error}); refusing pickle")
    shown = ", ".join(shipped[:3]) + (", ..." if len(shipped) > 3 else "")
    if not allow_pickle:
        raise RegistryError(
            f"cannot persist the model with skops ({shown}: {error}); saving it needs"
            " cloudpickle, and loading a pickle runs code from the artifact. Set"
            " registry.allow_pickle: true in the project config to accept that risk"
            " (it is written on the version)"
        )
    reason = f"cloudpickle: skops cannot persist {shown} ({error})"
    logger.warning("model saved with %s", reason)
    return SerializationChoice(
        "cloudpickle", (), reason, _packages(found, "cloudpickle"), _code(found)
    )


def pip_requirements(choice: SerializationChoice) -> list[str]:
    """Pinned pip requirements for a saved model, from the installed versions.

    Passing these to ``log_model`` saves MLflow 14-18 s of requirement inference.

    Args:
        choice: the serialisation choice; the distributions of its ``packages`` are pinned.

    Returns:
        ``["scikit-learn==1.9.1", ...]``; local version labels (``+cpu``) are dropped so the
        pins install from PyPI.

    Raises:
        RegistryError: a package the model needs is not installed.
    """
    owners = _package_owners()
    pins: dict[str, str] = {}
    for package in choice.packages:
        dist = owners.get(package, [package])[0]
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError as exc:
            raise RegistryError(f"package {package!r} used by the model is not installed") from exc
        pins[dist] = f"{dist}=={version.split('+', 1)[0]}"
    return list(pins.values())


def pin_requirements_ready() -> None:
    """List the installed packages now, as :func:`pip_requirements` and MLflow's own
    requirement check will (each reads every installed package's metadata once a
    process), so a run can do it while it waits for the steps before registration."""
    from mlflow.utils.requirements_utils import warn_dependency_requirement_mismatches

    _package_owners()
    warn_dependency_requirement_mismatches(["mlflow"])  # fills MLflow's package map


@lru_cache(maxsize=1)
def _package_owners() -> dict[str, list[str]]:
    """Import name -> distribution names (``xgboost`` -> ``xgboost-cpu`` here)."""
    return {name: list(dists) for name, dists in metadata.packages_distributions().items()}
