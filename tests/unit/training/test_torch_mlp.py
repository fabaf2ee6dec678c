"""The PyTorch MLP estimators: sklearn contract, validation, no torch state leaks."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest

from conveyor.errors import TrainingError
from conveyor.training.torch_mlp import TorchMLPClassifier, TorchMLPRegressor

pytestmark = pytest.mark.usefixtures("needs_torch")


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(120, 3))
    return features, features[:, 0] * 2.0 - features[:, 1]


def test_fitted_model_predicts_after_pickling_without_torch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    features, target = _data()
    model = TorchMLPRegressor(epochs=10).fit(features, target)
    blob = pickle.dumps(model)
    for name in [m for m in sys.modules if m == "torch" or m.startswith("torch.")]:
        monkeypatch.setitem(sys.modules, name, None)  # any torch reference would now fail
    restored = pickle.loads(blob)
    assert np.array_equal(restored.predict(features), model.predict(features))
    assert np.corrcoef(model.predict(features), target)[0, 1] > 0.9


def test_classifier_probabilities_sum_to_one_in_classes_order() -> None:
    features, target = _data()
    labels = np.where(target > 0, "up", "down")
    model = TorchMLPClassifier(epochs=10).fit(features, labels)
    proba = model.predict_proba(features)
    assert list(model.classes_) == ["down", "up"]
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert (model.predict(features) == labels).mean() > 0.9


def test_fit_leaves_torch_global_state_alone() -> None:
    import torch

    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    TorchMLPRegressor(epochs=2, num_threads=1).fit(*_data())
    assert torch.equal(torch.rand(1), expected)
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"hidden_sizes": (8, 0)}, "hidden_sizes"),
        ({"epochs": 0}, "epochs"),
        ({"lr": -1.0}, "lr"),
    ],
)
def test_bad_params_are_named(params: dict[str, object], message: str) -> None:
    with pytest.raises(TrainingError, match=message):
        TorchMLPRegressor(**params).fit(*_data())  # type: ignore[arg-type]


def test_wrong_feature_count_at_predict_is_a_value_error() -> None:
    features, target = _data()
    model = TorchMLPRegressor(epochs=1).fit(features, target)
    with pytest.raises(ValueError, match="expects 3"):
        model.predict(features[:, :2])
