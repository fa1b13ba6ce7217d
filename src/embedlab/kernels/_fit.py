"""Helpers shared by the DKM estimators: targets, PSD parametrisation, the Adam loop."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from embedlab.kernels.objective import stable_cholesky

__all__ = ["centred_one_hot", "gram_from_factor", "init_factor", "maximise"]


def centred_one_hot(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """``(n, n_classes)`` float64 one-hot rows minus ``1 / n_classes`` (zero-mean targets)."""
    y = torch.zeros(len(labels), n_classes, dtype=torch.float64)
    y[torch.arange(len(labels)), torch.from_numpy(labels)] = 1.0
    return y - 1.0 / n_classes


def init_factor(gram: torch.Tensor) -> torch.nn.Parameter:
    """A factor ``V`` with ``V V^T = gram`` (its Cholesky factor), as a trainable parameter."""
    chol = stable_cholesky(gram.detach())
    return torch.nn.Parameter(chol.clone(memory_format=torch.contiguous_format))


def gram_from_factor(v: torch.Tensor) -> torch.Tensor:
    """``V V^T``: PSD by construction."""
    return v @ v.T


def maximise(
    objective: Callable[[], torch.Tensor],
    params: Sequence[torch.nn.Parameter],
    *,
    steps: int,
    lr: float,
) -> list[float]:
    """Maximise ``objective`` with L-BFGS (strong-Wolfe line search), ``steps`` iterations.

    L-BFGS rather than Adam: the objective is smooth and badly scaled (large ``nu`` makes
    it stiff near the NNGP start), where Adam's fixed step size oscillates. ``lr`` is
    L-BFGS's initial step. Returns the objective at each evaluation.
    """
    history: list[float] = []
    if not params:
        with torch.no_grad():
            history.append(float(objective()))
        return history
    opt = torch.optim.LBFGS(
        list(params), lr=lr, max_iter=steps, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        value = objective()
        v = float(value.detach())
        if not math.isfinite(v):
            raise RuntimeError(f"DKM objective is {v} after {len(history)} evaluations")
        history.append(v)
        loss = -value
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    if steps:
        opt.step(closure)  # type: ignore[no-untyped-call]
    with torch.no_grad():
        history.append(float(objective()))
    return history
