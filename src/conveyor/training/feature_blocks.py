"""Which preprocessed columns each input feature becomes, when preprocessing is per value.

Conveyor's preprocessing (value cleaning, imputation with learnt statistics, scaling,
one-hot encoding) turns each input column into its own block of output columns, and each
output value depends only on the input value in the same row and column. Then shuffling
the rows of one input column and preprocessing again gives exactly the preprocessed rows
with that column's block shuffled the same way. Permutation importance uses this to
preprocess the held-out rows once instead of once per shuffle.

Only the components known to work that way qualify; for any other pipeline
``feature_blocks`` returns None and the caller preprocesses every shuffle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["FeatureBlocks", "feature_blocks"]


@dataclass(frozen=True)
class FeatureBlocks:
    """Preprocessed rows and, per input feature, the output columns it becomes.

    Attributes:
        estimator: the pipeline's final step (it scores ``matrix``).
        matrix: the preprocessed rows, as the pipeline hands them to ``estimator``.
        columns: input feature -> indices of its columns in ``matrix`` (empty when the
            pipeline does not use the feature).
    """

    estimator: Any
    matrix: np.ndarray
    columns: dict[str, np.ndarray]


def feature_blocks(pipeline: Any, features: pd.DataFrame) -> FeatureBlocks | None:
    """Preprocess ``features`` once and map each input feature to its output columns.

    Args:
        pipeline: a fitted model.
        features: the rows to preprocess; their column names are the input features.

    Returns:
        The preprocessed rows and the blocks, or None when the pipeline is not a
        ``[clean,] preprocess, model`` pipeline built only of per-value components.
    """
    import numpy as np

    preprocessor = _preprocessor(pipeline, features)
    if preprocessor is None:
        return None
    names = [str(c) for c in features.columns]
    blocks: dict[str, list[int]] = {name: [] for name in names}
    for branch, transformer, columns in preprocessor.transformers_:
        if _dropped(transformer):
            continue
        start = preprocessor.output_indices_[branch].start
        for column, width in zip(columns, _widths(transformer, len(columns)), strict=True):
            blocks[column].extend(range(start, start + width))
            start += width
        if start != preprocessor.output_indices_[branch].stop:
            return None
    matrix = pipeline[:-1].transform(features)
    used = sum(len(block) for block in blocks.values())
    if not isinstance(matrix, np.ndarray) or matrix.ndim != 2 or used != matrix.shape[1]:
        return None
    return FeatureBlocks(
        estimator=pipeline[-1],
        matrix=matrix,
        columns={name: np.asarray(block, dtype=np.intp) for name, block in blocks.items()},
    )


def _preprocessor(pipeline: Any, features: pd.DataFrame) -> Any | None:
    """The pipeline's ``ColumnTransformer`` if every step before the model is per value."""
    from sklearn.pipeline import Pipeline

    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) not in (2, 3):
        return None
    *before, preprocessor, _ = (step for _, step in pipeline.steps)
    if before and not _keeps_names(before[0], features):
        return None
    return preprocessor if _per_value_columns(preprocessor, features) else None


def _keeps_names(cleaner: Any, features: pd.DataFrame) -> bool:
    """Whether ``cleaner`` is a value cleaner handing on each column under its own name."""
    from conveyor_cleaning.cleaner import ValueCleaner

    if not isinstance(cleaner, ValueCleaner):
        return False
    renamed = cleaner.renamed or {}
    for column in features.columns:
        name = renamed.get(str(column), str(column).strip() if cleaner.strip else str(column))
        if name != column:
            return False
    return True


def _per_value_columns(preprocessor: Any, features: pd.DataFrame) -> bool:
    """Whether a fitted ``ColumnTransformer`` maps columns picked by name value by value."""
    from sklearn.compose import ColumnTransformer

    names = list(features.columns)
    if not isinstance(preprocessor, ColumnTransformer) or not hasattr(
        preprocessor, "output_indices_"
    ):
        return False
    if not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
        return False
    return all(
        _dropped(transformer)
        or (
            isinstance(columns, list)
            and set(columns) <= set(names)
            and all(_per_value(step) for step in _steps(transformer))
        )
        for _, transformer, columns in preprocessor.transformers_
    )


def _dropped(transformer: Any) -> bool:
    return isinstance(transformer, str) and transformer == "drop"


def _steps(transformer: Any) -> list[Any]:
    if hasattr(transformer, "steps"):
        return [step for _, step in transformer.steps]
    return [transformer]


def _per_value(step: Any) -> bool:
    """Whether ``step`` maps each value on its own into a fixed number of columns."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if type(step) is SimpleImputer:
        # An imputer drops a column that was empty in training unless told to keep it.
        return not step.add_indicator and not bool(_empty_at_fit(step).any())
    if type(step) is OneHotEncoder:
        return step.drop is None
    return type(step) is StandardScaler


def _empty_at_fit(imputer: Any) -> np.ndarray:
    import numpy as np

    if imputer.keep_empty_features or imputer.strategy == "constant":
        return np.zeros(len(imputer.statistics_), dtype=bool)
    empty: np.ndarray = np.isnan(imputer.statistics_.astype("float64"))
    return empty


def _widths(transformer: Any, n_columns: int) -> list[int]:
    """Output columns per input column of a fitted branch of per-value steps."""
    last = _steps(transformer)[-1]
    if not hasattr(last, "categories_"):
        return [1] * n_columns
    # Without min_frequency or max_categories the encoder has no infrequent categories.
    infrequent_all = getattr(last, "infrequent_categories_", None)
    widths = []
    for index, categories in enumerate(last.categories_):
        infrequent = infrequent_all[index] if infrequent_all is not None else None
        widths.append(len(categories) - (len(infrequent) - 1 if infrequent is not None else 0))
    return widths
