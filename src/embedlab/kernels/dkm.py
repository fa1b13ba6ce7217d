"""Full deep kernel machine: one learned ``(n, n)`` Gram matrix per layer over the data."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from embedlab._validation import check_int, check_positive_float
from embedlab.kernels._checks import as_float64, check_gram, check_labels, check_nu
from embedlab.kernels._fit import centred_one_hot, gram_from_factor, init_factor, maximise
from embedlab.kernels.objective import dkm_objective
from embedlab.kernels.relu_kernel import relu_kernel

__all__ = ["DeepKernelMachine", "input_gram", "nngp_grams"]


def input_gram(x: Any) -> torch.Tensor:
    """``G_0 = X X^T / d_in`` (float64) of inputs ``(n, d_in)``."""
    xt = as_float64("x", x)
    return xt @ xt.T / xt.shape[1]


def nngp_grams(gram0: Any, n_layers: int) -> list[torch.Tensor]:
    """The NNGP (``nu -> inf``) Grams: ``G_l = K(G_{l-1})`` for ``l = 1..n_layers``."""
    g = check_gram("gram0", gram0)
    out = []
    for _ in range(check_int("n_layers", n_layers, min_value=1)):
        g = relu_kernel(g)
        out.append(g)
    return out


class DeepKernelMachine:
    """Learns ``G_1..G_L`` on ``n`` training points by maximising the DKM objective.

    ``G_l = V_l V_l^T`` (PSD by construction), ``V_l`` initialised at the NNGP Grams and
    trained by L-BFGS in float64; a layer with ``nu = inf`` is the NNGP limit (``G_l = K(G_{l-1})``,
    no parameters). Cost ``O(n^3)`` per step: for predictions on new points and large ``n``
    use :class:`~embedlab.kernels.SparseDKMClassifier`.

    Yang et al., "A theory of representation learning gives a deep generalisation of kernel
    methods", ICML 2023 (the objective: :func:`~embedlab.kernels.dkm_objective`).

    Args:
        n_layers: learned Gram layers ``L``.
        nu: KL weight, one float or one per layer; must be > 0 (``inf``: NNGP).
        noise: variance of the Gaussian readout (GP regression to centred one-hot labels).
        steps, lr: L-BFGS iterations and initial step.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(20, 3)); y = (x[:, 0] > 0).astype(int)
        >>> dkm = DeepKernelMachine(n_layers=2, nu=10.0, steps=5).fit(x, y)
        >>> dkm.grams_[0].shape
        torch.Size([20, 20])
    """

    def __init__(
        self,
        n_layers: int = 2,
        *,
        nu: float | Sequence[float] = 1.0,
        noise: float = 0.1,
        steps: int = 100,
        lr: float = 1.0,
    ) -> None:
        self.n_layers = check_int("n_layers", n_layers, min_value=1)
        self.nu = check_nu(nu, self.n_layers)
        self.noise = check_positive_float("noise", noise)
        self.steps = check_int("steps", steps, min_value=0)
        self.lr = check_positive_float("lr", lr)
        self.grams_: list[torch.Tensor] = []
        self.history_: list[float] = []
        self.gram0_ = torch.zeros(0, 0, dtype=torch.float64)
        self.objective_ = math.nan

    def fit(self, x: Any, y: Any, *, n_classes: int | None = None) -> DeepKernelMachine:
        """Learn the Grams for inputs ``x (n, d_in)`` and class ids ``y (n,)``."""
        g0 = input_gram(x)
        labels = check_labels("y", y, g0.shape[0])
        return self.fit_gram(g0, labels, n_classes=n_classes)

    def fit_gram(self, gram0: Any, y: Any, *, n_classes: int | None = None) -> DeepKernelMachine:
        """As :meth:`fit`, from a precomputed input Gram ``(n, n)`` (must be PSD)."""
        g0 = check_gram("gram0", gram0)
        labels = check_labels("y", y, g0.shape[0])
        c = int(labels.max()) + 1 if n_classes is None else check_int("n_classes", n_classes)
        targets = centred_one_hot(labels, c)
        # every factor starts at the NNGP Gram; an infinite-nu layer has none (it stays NNGP)
        factors: list[torch.nn.Parameter | None] = [
            None if math.isinf(w) else init_factor(g)
            for g, w in zip(nngp_grams(g0, self.n_layers), self.nu, strict=True)
        ]

        def grams() -> list[torch.Tensor]:
            out, prev = [], g0
            for f in factors:
                prev = relu_kernel(prev) if f is None else gram_from_factor(f)
                out.append(prev)
            return out

        def objective() -> torch.Tensor:
            return dkm_objective(grams(), g0, targets, self.nu, noise=self.noise)

        params = [f for f in factors if f is not None]
        self.history_ = maximise(objective, params, steps=self.steps, lr=self.lr)
        self.gram0_ = g0
        with torch.no_grad():
            self.grams_ = [g.detach().clone() for g in grams()]
            self.objective_ = float(objective())
        return self

    def nngp_distance(self) -> list[float]:
        """Per layer ``||G_l - K(G_{l-1})||_F / ||K(G_{l-1})||_F`` of the fitted Grams."""
        if not self.grams_:
            raise RuntimeError("call fit() first")
        out = []
        for prev, g in zip([self.gram0_, *self.grams_[:-1]], self.grams_, strict=True):
            k = relu_kernel(prev)
            out.append(float(torch.linalg.norm(g - k) / torch.linalg.norm(k)))
        return out
