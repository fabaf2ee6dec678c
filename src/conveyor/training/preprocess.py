"""The preprocessing that travels with every model: impute, scale, one-hot encode.

Only stock scikit-learn components (``ColumnTransformer``, ``SimpleImputer``,
``StandardScaler``, ``OneHotEncoder``), so that skops serialises the fitted pipeline with
its default trusted types and skl2onnx has a converter for each of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conveyor.errors import TrainingError

if TYPE_CHECKING:
    from sklearn.compose import ColumnTransformer

    from conveyor.data.schema import TableSchema

__all__ = [
    "MAX_CATEGORIES",
    "MIN_CATEGORY_COUNT",
    "MISSING_CATEGORY",
    "build_preprocessor",
    "output_feature_sources",
]

# A missing category becomes this level, so "missing" can carry signal of its own.
MISSING_CATEGORY = "__missing__"
# Levels seen fewer times than this in training share one "infrequent" column, which is
# also where unseen levels go at predict time.
MIN_CATEGORY_COUNT = 10
# At most this many output columns per categorical feature (dense output stays bounded).
MAX_CATEGORIES = 64


def build_preprocessor(schema: TableSchema, *, scale: bool) -> ColumnTransformer:
    """Build the (unfitted) column transformer for a table's features.

    Numeric features: median imputation, then standardisation when ``scale``.
    Categorical features: missing -> ``MISSING_CATEGORY``, then one-hot encoding in which
    rare levels (fewer than ``MIN_CATEGORY_COUNT`` rows) and levels never seen in training
    share one "infrequent" column. Other columns are dropped. The output is dense.

    Args:
        schema: the table's column roles.
        scale: standardise numeric features (linear models, neural networks).

    Returns:
        A ``ColumnTransformer`` with a ``num`` and/or a ``cat`` branch.

    Raises:
        TrainingError: the schema has no feature columns.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if not schema.features:
        raise TrainingError(f"no feature columns to train on (target {schema.target!r})")
    branches: list[tuple[str, Any, list[str]]] = []
    if schema.numeric:
        numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
        if scale:
            numeric_steps.append(("scale", StandardScaler()))
        branches.append(("num", Pipeline(numeric_steps), list(schema.numeric)))
    if schema.categorical:
        categorical = Pipeline(
            [
                ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
                (
                    "onehot",
                    OneHotEncoder(
                        handle_unknown="infrequent_if_exist",
                        min_frequency=MIN_CATEGORY_COUNT,
                        max_categories=MAX_CATEGORIES,
                        sparse_output=False,
                    ),
                ),
            ]
        )
        branches.append(("cat", categorical, list(schema.categorical)))
    return ColumnTransformer(branches, remainder="drop", sparse_threshold=0.0)


def output_feature_sources(preprocessor: ColumnTransformer) -> list[str]:
    """For each output column of a fitted preprocessor, the input feature it came from.

    Used to add up a model's per-column importances into per-feature importances.

    Args:
        preprocessor: a fitted transformer from ``build_preprocessor``.

    Returns:
        One input column name per output column, in output order.
    """
    sources: list[str] = []
    for name, transformer, columns in preprocessor.transformers_:
        if name == "remainder" or isinstance(transformer, str):
            continue
        last = transformer.steps[-1][1] if hasattr(transformer, "steps") else transformer
        if hasattr(last, "categories_"):
            for index, column in enumerate(columns):
                sources.extend([column] * _onehot_width(last, index))
        else:
            sources.extend(columns)
    return sources


def _onehot_width(encoder: Any, index: int) -> int:
    """Number of output columns a fitted one-hot encoder gives its ``index``-th input."""
    width = len(encoder.categories_[index])
    infrequent = getattr(encoder, "infrequent_categories_", None)
    if infrequent is not None and infrequent[index] is not None:
        width -= len(infrequent[index]) - 1
    return width
