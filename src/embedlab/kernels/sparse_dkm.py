"""Sparse deep kernel machine: learned inducing Gram matrices, cost linear in ``n``."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from embedlab._validation import check_bool, check_int, check_positive_float
from embedlab.kernels._checks import as_float64, check_labels, check_nu
from embedlab.kernels._fit import centred_one_hot, gram_from_factor, init_factor, maximise
from embedlab.kernels.objective import gaussian_kl
from embedlab.kernels.relu_kernel import relu_kernel, relu_kernel_cross
from embedlab.kernels.sgpr import condition_on_inducing, sgpr_bound, sgpr_predict

__all__ = ["SparseDKMClassifier"]

Blocks = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (K_ii, K_ti, k_t)


class SparseDKMClassifier:
    """Inducing-point DKM with a GP-regression readout to centred one-hot labels.

    Each layer ``l`` has a learned ``(m, m)`` inducing Gram ``G_ii^l = V_l V_l^T``; data
    points (train or test) get their Gram entries by conditioning on the inducing points
    (:func:`~embedlab.kernels.condition_on_inducing`), so a step costs ``O(n m^2)``. The
    objective (maximised with L-BFGS, float64) is Titsias' sparse-GP bound of the output layer
    minus ``sum_l nu_l KL(N(0, G_ii^l) || N(0, K(G_ii^{l-1})))`` on the inducing points, as in
    the sparse DKM of Yang et al. (ICML 2023). ``nu = inf`` keeps every inducing Gram at its
    NNGP value: the sparse NNGP baseline. Inducing inputs start at a seeded random subset of
    the training inputs and are learned (``learn_inputs``).

    The readout is GP regression, not the paper's categorical likelihood: ``predict`` is the
    arg-max of the predictive mean, ``log_density`` the Gaussian predictive log density of
    the (centred) one-hot target.

    Args:
        n_layers: learned Gram layers.
        n_inducing: inducing points ``m`` (at most the number of training points).
        nu: KL weight, one or one per layer, > 0 (``inf``: NNGP).
        noise: readout noise variance.
        steps, lr: L-BFGS iterations and initial step.
        learn_inputs: also learn the inducing inputs.
        seed: choice of the initial inducing inputs.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(60, 4)); y = (x[:, 0] > 0).astype(int)
        >>> clf = SparseDKMClassifier(n_inducing=10, steps=20).fit(x, y)
        >>> clf.predict(x[:5]).shape
        (5,)
    """

    def __init__(
        self,
        n_layers: int = 2,
        *,
        n_inducing: int = 100,
        nu: float | Sequence[float] = 1.0,
        noise: float = 0.1,
        steps: int = 100,
        lr: float = 1.0,
        learn_inputs: bool = True,
        seed: int = 0,
    ) -> None:
        self.n_layers = check_int("n_layers", n_layers, min_value=1)
        self.n_inducing = check_int("n_inducing", n_inducing, min_value=1)
        self.nu = check_nu(nu, self.n_layers)
        self.noise = check_positive_float("noise", noise)
        self.steps = check_int("steps", steps, min_value=0)
        self.lr = check_positive_float("lr", lr)
        self.learn_inputs = check_bool("learn_inputs", learn_inputs)
        self.seed = check_int("seed", seed, min_value=0)
        self.history_: list[float] = []
        self._fitted = False

    # --- the model ------------------------------------------------------------
    def _inducing_grams(self) -> list[torch.Tensor]:
        """``G_ii^0 .. G_ii^L`` (NNGP layers recomputed from the layer below)."""
        z = self._z
        grams = [z @ z.T / z.shape[1]]
        for f in self._factors:
            grams.append(relu_kernel(grams[-1]) if f is None else gram_from_factor(f))
        return grams

    def _blocks(self, x: torch.Tensor, grams: list[torch.Tensor]) -> Blocks:
        """Output-layer kernel blocks between the inducing points and the rows of ``x``."""
        z = self._z
        g_ti = x @ z.T / x.shape[1]
        g_t = (x * x).sum(1) / x.shape[1]
        for g_prev, g_next in itertools.pairwise(grams):
            k_ii = relu_kernel(g_prev)
            k_ti = relu_kernel_cross(g_ti, g_t, g_prev.diagonal())
            # the ReLU kernel keeps the diagonal: k_t == g_t
            g_ti, g_t = condition_on_inducing(k_ii, k_ti, g_t, g_next)
        last = grams[-1]
        return relu_kernel(last), relu_kernel_cross(g_ti, g_t, last.diagonal()), g_t

    def _objective(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        grams = self._inducing_grams()
        k_ii, k_ti, k_t = self._blocks(x, grams)
        value = sgpr_bound(k_ii, k_ti, k_t, targets, self.noise)
        for g_prev, g, w in zip(grams[:-1], grams[1:], self.nu, strict=True):
            if math.isfinite(w):
                value = value - w * gaussian_kl(g, relu_kernel(g_prev))
        return value

    # --- public API -----------------------------------------------------------
    def fit(self, x: Any, y: Any) -> SparseDKMClassifier:
        """Learn the inducing Grams (and inputs) from ``x (n, d_in)`` and class ids ``y (n,)``."""
        xt = as_float64("x", x)
        n = xt.shape[0]
        labels = check_labels("y", y, n)
        if self.n_inducing > n:
            raise ValueError(
                f"n_inducing must be <= the number of training points ({n}), got {self.n_inducing}"
            )
        self.n_classes_ = int(labels.max()) + 1
        targets = centred_one_hot(labels, self.n_classes_)
        rng = np.random.default_rng(self.seed)
        start = xt[torch.from_numpy(np.sort(rng.choice(n, self.n_inducing, replace=False)))]
        self._z = torch.nn.Parameter(start.contiguous().clone(), requires_grad=self.learn_inputs)
        self._factors: list[torch.nn.Parameter | None] = []
        self._fitted = True
        with torch.no_grad():
            prior = self._inducing_grams()[0]
        for w in self.nu:  # start at the NNGP inducing Grams
            prior = relu_kernel(prior)
            self._factors.append(None if math.isinf(w) else init_factor(prior))
        params = [f for f in self._factors if f is not None]
        if self.learn_inputs:
            params.append(self._z)
        self.history_ = maximise(
            lambda: self._objective(xt, targets), params, steps=self.steps, lr=self.lr
        )
        self._x_train, self._targets = xt, targets
        return self

    def predict_mean(self, x: Any) -> np.ndarray:
        """``(n, n_classes)`` predictive mean of the centred one-hot targets."""
        return self._predict(x)[0].numpy()

    def predict(self, x: Any) -> np.ndarray:
        """``(n,)`` class ids: arg-max of the predictive mean."""
        ids: np.ndarray = self.predict_mean(x).argmax(1)
        return ids

    def log_density(self, x: Any, y: Any) -> float:
        """Mean Gaussian predictive log density of the centred one-hot targets of ``y``."""
        mean, var = self._predict(x)
        labels = check_labels("y", y, mean.shape[0])
        target = centred_one_hot(labels, self.n_classes_)
        v = var[:, None] + self.noise
        lpd = -0.5 * (torch.log(2 * math.pi * v) + (target - mean) ** 2 / v)
        return float(lpd.sum(1).mean())

    def objective(self) -> float:
        """The objective at the fitted parameters (bound minus weighted KL)."""
        self._check_fitted()
        with torch.no_grad():
            return float(self._objective(self._x_train, self._targets))

    def _predict(self, x: Any) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_fitted()
        xs = as_float64("x", x)
        if xs.shape[1] != self._z.shape[1]:
            raise ValueError(
                f"x must have {self._z.shape[1]} features like the training inputs, "
                f"got {xs.shape[1]}"
            )
        with torch.no_grad():
            grams = self._inducing_grams()
            k_ii, k_ti, _ = self._blocks(self._x_train, grams)
            _, k_si, k_s = self._blocks(xs, grams)
            return sgpr_predict(k_ii, k_ti, self._targets, self.noise, k_si, k_s)

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise RuntimeError("call fit() first")
