"""skl2onnx converters Conveyor's pipelines need beyond the stock ones, registered once.

- ``OneHotEncoder`` with infrequent levels (``min_frequency`` / ``max_categories``): each
  frequent level maps to its column, every other level (rare or unseen) to the
  infrequent column, as scikit-learn does with ``handle_unknown="infrequent_if_exist"``.
  The stock converter refuses this configuration.
- ``SimpleImputer`` on NaN: for string inputs it is the identity, because missing
  categories are fed to the graph as the imputer's fill value; for float64 inputs it is
  ``Where(IsNaN(x), statistic, x)`` (ONNX Runtime's ``Imputer`` has no float64 kernel).
- LightGBM and XGBoost estimators, with onnxmltools' converters.
- ``LabelEncodedClassifier``: the inner classifier's graph with its integer labels mapped
  back to the original ones (matched by class name: registry never imports training).
"""

from __future__ import annotations

import logging
import math
from functools import lru_cache
from typing import Any

__all__ = ["opsets", "register_converters"]

logger = logging.getLogger(__name__)

# onnxmltools converts trees to ai.onnx.ml opset 3 at most.
ML_OPSET = 3
# Wrapper classes whose converter is registered (there is one such class per process).
_WRAPPERS_DONE: set[type[Any]] = set()


def opsets() -> dict[str, int]:
    """Target opsets: skl2onnx's newest tested default opset, with ``ai.onnx.ml`` 3."""
    from skl2onnx import get_latest_tested_opset_version

    return {"": int(get_latest_tested_opset_version()), "ai.onnx.ml": ML_OPSET}


def register_converters(final_type: type[Any]) -> None:
    """Register the converters a pipeline ending in ``final_type`` needs (once each).

    Args:
        final_type: the class of the pipeline's last step.
    """
    _register_library_converters()
    if final_type.__name__ == "LabelEncodedClassifier" and final_type not in _WRAPPERS_DONE:
        _register_label_encoded(final_type)
        _WRAPPERS_DONE.add(final_type)


def _register_label_encoded(final_type: type[Any]) -> None:
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    update_registered_converter(
        final_type,
        "ConveyorLabelEncodedClassifier",
        calculate_linear_classifier_output_shapes,
        _convert_label_encoded,
        options={"zipmap": [True, False, "columns"], "nocl": [True, False]},
    )


@lru_cache(maxsize=1)
def _register_library_converters() -> None:
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    classifier = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    update_registered_converter(
        OneHotEncoder, "SklearnOneHotEncoder", _onehot_shape, _convert_onehot
    )
    update_registered_converter(
        SimpleImputer, "SklearnSimpleImputer", _imputer_shape, _convert_imputer
    )
    try:
        import lightgbm
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    except ImportError:
        logger.debug("no LightGBM ONNX converter", exc_info=True)
    else:
        update_registered_converter(
            lightgbm.LGBMClassifier,
            "LightGbmLGBMClassifier",
            calculate_linear_classifier_output_shapes,
            convert_lightgbm,
            options=classifier,
        )
        update_registered_converter(
            lightgbm.LGBMRegressor,
            "LightGbmLGBMRegressor",
            calculate_linear_regressor_output_shapes,
            convert_lightgbm,
            options={"split": None},
        )
    try:
        import xgboost
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    except ImportError:
        logger.debug("no XGBoost ONNX converter", exc_info=True)
    else:
        update_registered_converter(
            xgboost.XGBClassifier,
            "XGBoostXGBClassifier",
            calculate_linear_classifier_output_shapes,
            convert_xgboost,
            options=classifier,
        )
        update_registered_converter(
            xgboost.XGBRegressor,
            "XGBoostXGBRegressor",
            calculate_linear_regressor_output_shapes,
            convert_xgboost,
        )


def _output_categories(encoder: Any, index: int) -> tuple[list[str], bool]:
    """The frequent levels of input ``index`` in output order, and whether an infrequent
    column follows them (scikit-learn puts it last)."""
    categories = encoder.categories_[index].tolist()
    if not all(isinstance(c, str) for c in categories):
        raise NotImplementedError("one-hot encoding of non-string categories")
    infrequent = getattr(encoder, "infrequent_categories_", None) if _infrequent(encoder) else None
    rare = set() if infrequent is None or infrequent[index] is None else set(infrequent[index])
    return [c for c in categories if c not in rare], bool(rare)


def _infrequent(encoder: Any) -> bool:
    return bool(getattr(encoder, "_infrequent_enabled", False))


def _onehot_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    encoder = operator.raw_operator
    if getattr(encoder, "drop_idx_", None) is not None:
        raise NotImplementedError("one-hot encoding with dropped levels")
    width = 0
    for index in range(len(encoder.categories_)):
        frequent, has_infrequent = _output_categories(encoder, index)
        width += len(frequent) + int(has_infrequent)
    rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([rows, width])


def _encoder_columns(operator: Any) -> list[tuple[str, int]]:
    """(graph variable, column within it) for each encoder input column, in order."""
    found = []
    for variable in operator.inputs:
        width = variable.type.shape[1]
        if not isinstance(width, int):
            raise NotImplementedError("one-hot encoder inputs need a known column count")
        found += [(variable.full_name, column) for column in range(width)]
    return found


def _convert_onehot(scope: Any, operator: Any, container: Any) -> None:
    """Each level -> its column; rare and unseen levels -> the infrequent column (if any),
    else no column (``handle_unknown="ignore"``)."""
    import numpy as np
    from skl2onnx.common.data_types import StringTensorType
    from skl2onnx.proto import onnx_proto

    encoder = operator.raw_operator
    if not all(isinstance(v.type, StringTensorType) for v in operator.inputs):
        raise NotImplementedError("one-hot encoding of non-string inputs")
    pieces = []
    for index, (name, column) in enumerate(_encoder_columns(operator)):
        frequent, has_infrequent = _output_categories(encoder, index)
        width = len(frequent) + int(has_infrequent)
        rare_code = len(frequent) if has_infrequent else -1
        known = encoder.categories_[index].tolist()
        position = {level: code for code, level in enumerate(frequent)}
        codes = [position.get(c, rare_code) for c in known]
        taken = _initializer(scope, container, "col", onnx_proto.TensorProto.INT64, [column])
        single = scope.get_unique_variable_name("onehot_in")
        container.add_node("Gather", [name, taken], single, axis=1)
        code = scope.get_unique_variable_name("onehot_code")
        container.add_node(
            "LabelEncoder",
            single,
            code,
            op_domain="ai.onnx.ml",
            op_version=2,
            keys_strings=[str(c) for c in known],
            values_int64s=codes,
            default_int64=rare_code,
        )
        levels = _initializer(
            scope, container, "levels", onnx_proto.TensorProto.INT64, list(np.arange(width))
        )
        hits = scope.get_unique_variable_name("onehot_hits")
        container.add_node("Equal", [code, levels], hits)
        piece = scope.get_unique_variable_name("onehot")
        container.add_node("Cast", hits, piece, to=onnx_proto.TensorProto.FLOAT)
        pieces.append(piece)
    out = operator.outputs[0].full_name
    if len(pieces) == 1:
        container.add_node("Identity", pieces, out)
    else:
        container.add_node("Concat", pieces, out, axis=1)


def _initializer(scope: Any, container: Any, stem: str, kind: int, values: list[Any]) -> str:
    name: str = scope.get_unique_variable_name(stem)
    container.add_initializer(name, kind, [len(values)], [int(v) for v in values])
    return name


def _imputer_shape(operator: Any) -> None:
    from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes

    calculate_sklearn_imputer_output_shapes(operator)


def _convert_imputer(scope: Any, operator: Any, container: Any) -> None:
    """A string imputer on NaN is the identity: missing categories are fed as its fill
    value (see ``onnx_scoring.build_feeds``); everything else goes to skl2onnx's converter."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer

    imputer = operator.raw_operator
    kind = type(operator.inputs[0].type)
    on_nan = _is_nan(imputer.missing_values)
    names = [v.full_name for v in operator.inputs]
    joined = names[0]
    if len(names) > 1:
        joined = scope.get_unique_variable_name("impute_in")
        container.add_node("Concat", names, joined, axis=1)
    out = operator.outputs[0].full_name
    if kind is StringTensorType and on_nan:
        container.add_node("Identity", joined, out)
    elif kind in (DoubleTensorType, FloatTensorType) and on_nan and _finite(imputer.statistics_):
        _impute_numbers(
            scope, container, joined, out, imputer.statistics_, double=kind is DoubleTensorType
        )
    else:
        convert_sklearn_imputer(scope, operator, container)


def _is_nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _finite(values: Any) -> bool:
    import numpy as np

    return values.dtype.kind == "f" and bool(np.all(np.isfinite(values)))


def _impute_numbers(
    scope: Any, container: Any, joined: str, out: str, statistics: Any, *, double: bool
) -> None:
    """``Where(IsNaN(x), statistic, x)`` in the input's precision (ONNX Runtime's Imputer
    has no float64 kernel)."""
    import numpy as np
    from skl2onnx.proto import onnx_proto

    kind = onnx_proto.TensorProto.DOUBLE if double else onnx_proto.TensorProto.FLOAT
    values = np.asarray(statistics, dtype=np.float64 if double else np.float32)
    fill = scope.get_unique_variable_name("impute_value")
    container.add_initializer(fill, kind, [1, len(values)], values.tolist())
    missing = scope.get_unique_variable_name("impute_missing")
    container.add_node("IsNaN", joined, missing)
    container.add_node("Where", [missing, fill, joined], out)


def _convert_label_encoded(scope: Any, operator: Any, container: Any) -> None:
    """The inner classifier's graph, its integer labels mapped back to the original ones."""
    import numpy as np
    from skl2onnx.algebra.onnx_operator import OnnxSubEstimator
    from skl2onnx.algebra.onnx_ops import OnnxGather, OnnxIdentity

    wrapper = operator.raw_operator
    version = container.target_opset
    inner = OnnxSubEstimator(
        wrapper.estimator_, operator.inputs[0], op_version=version, options={"zipmap": False}
    )
    classes = np.asarray(wrapper.classes_)
    if classes.dtype.kind in "OUS":
        classes = classes.astype(str).astype(object)
    else:
        classes = classes.astype(np.int64)
    label = OnnxGather(
        classes, inner[0], op_version=version, output_names=[operator.outputs[0].full_name]
    )
    proba = OnnxIdentity(inner[1], op_version=version, output_names=[operator.outputs[1]])
    label.add_to(scope, container)
    proba.add_to(scope, container)
