"""A small PyTorch multilayer perceptron for tabular data, behind the scikit-learn API.

PyTorch is needed to *fit* only. The fitted weights are kept as numpy arrays and
``predict`` runs a numpy forward pass, so a fitted model predicts, pickles and serialises
(skops) without torch installed and without a torch module inside the artifact.
Fitting is deterministic on CPU for a given ``seed``: torch's global RNG is forked, not
touched, and deterministic algorithms are switched on for the duration of ``fit`` only.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from conveyor.errors import TrainingError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["TorchMLPClassifier", "TorchMLPRegressor"]

_MISSING_TORCH = "torch_mlp needs the optional extra: pip install 'conveyor-mlops[torch]'"


class _TorchMLP(BaseEstimator):  # type: ignore[misc]
    """Shared fitting and forward pass; subclasses define the loss and the outputs."""

    def __init__(
        self,
        *,
        hidden_sizes: Sequence[int] = (64, 32),
        epochs: int = 30,
        lr: float = 3e-3,
        batch_size: int = 128,
        weight_decay: float = 0.0,
        seed: int = 0,
        num_threads: int = 1,
    ) -> None:
        self.hidden_sizes = hidden_sizes
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.seed = seed
        self.num_threads = num_threads

    # -- training ------------------------------------------------------------------
    def _train(self, features: np.ndarray, targets: np.ndarray, n_outputs: int) -> None:
        """Fit the network and keep its weights as numpy arrays."""
        torch = _import_torch()
        self._check_params()
        inputs = torch.from_numpy(features)
        labels = torch.from_numpy(targets)
        with _deterministic(torch, self.seed, self.num_threads):
            network = self._network(torch, features.shape[1], n_outputs)
            optimiser = torch.optim.Adam(
                network.parameters(), lr=self.lr, weight_decay=self.weight_decay
            )
            loss_fn = self._loss(torch)
            order = torch.Generator().manual_seed(self.seed)
            network.train()
            for _ in range(self.epochs):
                for batch in torch.randperm(len(inputs), generator=order).split(self.batch_size):
                    optimiser.zero_grad()
                    loss = loss_fn(network(inputs[batch]), labels[batch])
                    loss.backward()
                    optimiser.step()
        layers = [m for m in network if isinstance(m, torch.nn.Linear)]
        self.weights_ = [layer.weight.detach().numpy().T.copy() for layer in layers]
        self.biases_ = [layer.bias.detach().numpy().copy() for layer in layers]
        self.n_features_in_ = features.shape[1]

    def _network(self, torch: Any, n_inputs: int, n_outputs: int) -> Any:
        sizes = [n_inputs, *self.hidden_sizes]
        layers: list[Any] = []
        for size_in, size_out in itertools.pairwise(sizes):
            layers += [torch.nn.Linear(size_in, size_out), torch.nn.ReLU()]
        layers.append(torch.nn.Linear(sizes[-1], n_outputs))
        return torch.nn.Sequential(*layers)

    def _loss(self, torch: Any) -> Any:
        raise NotImplementedError

    def _check_params(self) -> None:
        sizes = list(self.hidden_sizes)
        if not all(isinstance(s, int) and s > 0 for s in sizes):
            raise TrainingError(f"torch_mlp: hidden_sizes must be positive integers, got {sizes}")
        for name in ("epochs", "batch_size", "num_threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise TrainingError(f"torch_mlp: {name} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise TrainingError(f"torch_mlp: lr must be positive, got {self.lr!r}")

    # -- inference -----------------------------------------------------------------
    def _forward(self, features: Any) -> np.ndarray:
        """Network outputs for ``features``, computed with numpy."""
        import numpy as np
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "weights_")
        values = _as_float32(features)
        if values.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {values.shape[1]} features, but the model expects {self.n_features_in_}"
            )
        for weight, bias in zip(self.weights_[:-1], self.biases_[:-1], strict=True):
            values = np.maximum(values @ weight + bias, 0.0)
        result: np.ndarray = values @ self.weights_[-1] + self.biases_[-1]
        return result


class TorchMLPClassifier(ClassifierMixin, _TorchMLP):  # type: ignore[misc]
    """Multilayer perceptron classifier (softmax output, cross-entropy loss).

    Args:
        hidden_sizes: width of each hidden layer.
        epochs: passes over the training data.
        lr: Adam learning rate.
        batch_size: rows per gradient step.
        weight_decay: L2 penalty (Adam's weight decay).
        seed: seed of weight initialisation and batch order.
        num_threads: CPU threads while fitting (small networks gain nothing from more).
    """

    def fit(self, X: Any, y: Any) -> TorchMLPClassifier:  # noqa: N803 (sklearn API)
        """Fit on features ``X`` and labels ``y`` (any hashable labels)."""
        import numpy as np

        classes, encoded = np.unique(np.asarray(y), return_inverse=True)
        if len(classes) < 2:
            raise TrainingError("torch_mlp: the training labels have a single class")
        self.classes_ = classes
        self._train(_as_float32(X), encoded.astype(np.int64), n_outputs=len(classes))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:  # noqa: N803
        """Class probabilities, one column per entry of ``classes_``."""
        import numpy as np

        logits = self._forward(X)
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        proba: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
        return proba

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        """The most probable label of each row."""
        labels: np.ndarray = self.classes_[self._forward(X).argmax(axis=1)]
        return labels

    def _loss(self, torch: Any) -> Any:
        return torch.nn.CrossEntropyLoss()


class TorchMLPRegressor(RegressorMixin, _TorchMLP):  # type: ignore[misc]
    """Multilayer perceptron regressor (mean squared error on a standardised target).

    Args:
        hidden_sizes: width of each hidden layer.
        epochs: passes over the training data.
        lr: Adam learning rate.
        batch_size: rows per gradient step.
        weight_decay: L2 penalty (Adam's weight decay).
        seed: seed of weight initialisation and batch order.
        num_threads: CPU threads while fitting (small networks gain nothing from more).
    """

    def fit(self, X: Any, y: Any) -> TorchMLPRegressor:  # noqa: N803
        """Fit on features ``X`` and numeric targets ``y``."""
        import numpy as np

        target = np.asarray(y, dtype=np.float64)
        self.target_mean_ = float(target.mean())
        self.target_scale_ = float(target.std()) or 1.0
        scaled = ((target - self.target_mean_) / self.target_scale_).astype(np.float32)
        self._train(_as_float32(X), scaled.reshape(-1, 1), n_outputs=1)
        return self

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        """Predicted target of each row."""
        import numpy as np

        scaled = self._forward(X)[:, 0].astype(np.float64)
        prediction: np.ndarray = scaled * self.target_scale_ + self.target_mean_
        return prediction

    def _loss(self, torch: Any) -> Any:
        return torch.nn.MSELoss()


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise TrainingError(_MISSING_TORCH) from exc
    return torch


def _as_float32(features: Any) -> np.ndarray:
    import numpy as np

    values = np.asarray(features, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError(f"expected a 2-D feature array, got {values.ndim} dimension(s)")
    return np.ascontiguousarray(values)


@contextmanager
def _deterministic(torch: Any, seed: int, num_threads: int) -> Iterator[None]:
    """Seed torch, use deterministic kernels and ``num_threads`` inside the block only."""
    previous = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(num_threads)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(previous[0])
            torch.set_num_threads(previous[1])
