"""A classifier wrapper that trains on integer codes and answers in the original labels.

XGBoost 3 classifiers accept only the labels ``0 .. n-1``. Wrapped in
``LabelEncodedClassifier`` they fit on any labels (``"yes"``/``"no"``, ``">50K"``, ...),
and ``predict`` returns those labels while ``predict_proba`` columns follow ``classes_``,
so the whole pipeline speaks the user's labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sklearn.base import BaseEstimator, ClassifierMixin, clone

if TYPE_CHECKING:
    import numpy as np

__all__ = ["LabelEncodedClassifier"]


class LabelEncodedClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Fit ``estimator`` on integer-coded labels; expose the original labels.

    Args:
        estimator: an unfitted scikit-learn-API classifier needing labels ``0 .. n-1``.

    Attributes:
        estimator_: the fitted inner classifier.
        classes_: the original labels, sorted; the order of ``predict_proba`` columns.
    """

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def fit(self, X: Any, y: Any, **fit_params: Any) -> LabelEncodedClassifier:  # noqa: N803
        """Encode ``y`` as ``0 .. n-1`` and fit a clone of the inner classifier."""
        import numpy as np

        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        self.estimator_ = clone(self.estimator).fit(X, codes, **fit_params)
        self.n_features_in_ = self.estimator_.n_features_in_
        return self

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        """Predicted original label of each row."""
        import numpy as np

        codes = np.asarray(self.estimator_.predict(X)).astype(np.int64)
        labels: np.ndarray = self.classes_[codes]
        return labels

    def predict_proba(self, X: Any) -> np.ndarray:  # noqa: N803
        """Class probabilities, one column per entry of ``classes_``."""
        proba: np.ndarray = self.estimator_.predict_proba(X)
        return proba

    @property
    def feature_importances_(self) -> np.ndarray:
        """The inner classifier's feature importances."""
        importances: np.ndarray = self.estimator_.feature_importances_
        return importances
