"""The NNGP baseline (the ``nu -> inf`` limit of a DKM): exact GP regression, no learned Gram."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from embedlab._validation import check_int, check_positive_float
from embedlab.kernels._checks import as_float64, check_labels
from embedlab.kernels._fit import centred_one_hot
from embedlab.kernels.objective import gp_log_likelihood, stable_cholesky
from embedlab.kernels.relu_kernel import relu_kernel_cross

__all__ = ["NNGPClassifier"]


class NNGPClassifier:
    """GP regression to centred one-hot labels with the ReLU NNGP kernel of depth ``n_layers``.

    The input Gram ``X X^T / d_in`` is pushed through ``n_layers + 1`` ReLU kernel maps
    (``n_layers`` hidden Grams, then the output kernel), exactly as a DKM whose every
    ``nu`` is infinite. Exact: ``O(n^3)`` in the training points.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(30, 3)); y = (x[:, 0] > 0).astype(int)
        >>> float((NNGPClassifier().fit(x, y).predict(x) == y).mean()) > 0.9
        True
    """

    def __init__(self, n_layers: int = 2, *, noise: float = 0.1) -> None:
        self.n_layers = check_int("n_layers", n_layers, min_value=1)
        self.noise = check_positive_float("noise", noise)
        self._fitted = False

    def _kernel(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Output-layer kernel ``(n_a, n_b)`` between two input sets."""
        d = a.shape[1]
        g = a @ b.T / d
        ga, gb = (a * a).sum(1) / d, (b * b).sum(1) / d
        for _ in range(self.n_layers + 1):
            g = relu_kernel_cross(g, ga, gb)  # diagonals are preserved by the ReLU kernel
        return g

    def fit(self, x: Any, y: Any) -> NNGPClassifier:
        """Store the training set and factor ``K + noise I``."""
        self._x = as_float64("x", x)
        labels = check_labels("y", y, self._x.shape[0])
        self.n_classes_ = int(labels.max()) + 1
        self._targets = centred_one_hot(labels, self.n_classes_)
        k = self._kernel(self._x, self._x)
        eye = torch.eye(k.shape[0], dtype=k.dtype)
        self._chol = stable_cholesky(k + self.noise * eye)
        self.log_marginal_ = float(gp_log_likelihood(k, self._targets, self.noise))
        self._fitted = True
        return self

    def _predict(self, x: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if not self._fitted:
            raise RuntimeError("call fit() first")
        xs = as_float64("x", x)
        if xs.shape[1] != self._x.shape[1]:
            raise ValueError(
                f"x must have {self._x.shape[1]} features like the training inputs, "
                f"got {xs.shape[1]}"
            )
        k_st = self._kernel(xs, self._x)
        a = torch.cholesky_solve(self._targets, self._chol)
        mean = k_st @ a
        v = torch.linalg.solve_triangular(self._chol, k_st.T, upper=False)
        var = (xs * xs).sum(1) / xs.shape[1] - (v * v).sum(0)
        return mean, var.clamp_min(0.0)

    def predict_mean(self, x: Any) -> np.ndarray:
        """``(n, n_classes)`` predictive mean."""
        return self._predict(x)[0].numpy()

    def predict(self, x: Any) -> np.ndarray:
        """``(n,)`` class ids: arg-max of the predictive mean."""
        ids: np.ndarray = self.predict_mean(x).argmax(1)
        return ids

    def log_density(self, x: Any, y: Any) -> float:
        """Mean Gaussian predictive log density of the centred one-hot targets of ``y``."""
        mean, var = self._predict(x)
        target = centred_one_hot(check_labels("y", y, mean.shape[0]), self.n_classes_)
        v = var[:, None] + self.noise
        lpd = -0.5 * (torch.log(2 * math.pi * v) + (target - mean) ** 2 / v)
        return float(lpd.sum(1).mean())
