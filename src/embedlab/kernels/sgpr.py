"""Sparse GP regression (Titsias 2009) on precomputed kernel blocks: bound and predictions.

Used as the readout of :class:`~embedlab.kernels.SparseDKMClassifier`: cost ``O(n m^2)`` for
``n`` data points and ``m`` inducing points.
"""

from __future__ import annotations

import math

import torch

from embedlab.kernels.objective import stable_cholesky

__all__ = ["condition_on_inducing", "sgpr_bound", "sgpr_predict"]


def condition_on_inducing(
    k_ii: torch.Tensor, k_ti: torch.Tensor, k_t: torch.Tensor, g_ii: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gram entries of data points given the inducing points' Gram ``g_ii``.

    With prior kernel ``[[k_ii, k_it], [k_ti, k_tt]]`` and inducing features whose Gram is
    ``g_ii``, the data features' conditional gives ``G_ti = A g_ii`` and
    ``diag G_tt = diag(A g_ii A^T) + diag(k_tt - A k_it)``, ``A = k_ti k_ii^-1``.

    Args:
        k_ii: ``(m, m)``; k_ti: ``(n, m)``; k_t: ``(n,)`` prior diagonal; g_ii: ``(m, m)``.

    Returns:
        ``(g_ti (n, m), g_t (n,))``.
    """
    chol = stable_cholesky(k_ii)
    a = torch.cholesky_solve(k_ti.T, chol).T  # (n, m) = k_ti k_ii^-1
    g_ti = a @ g_ii
    resid = (k_t - (a * k_ti).sum(1)).clamp_min(0.0)
    return g_ti, (g_ti * a).sum(1) + resid


def _factors(
    k_ii: torch.Tensor, k_ti: torch.Tensor, noise: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(L_K, B, L_S)``: ``L_K L_K^T = k_ii``, ``B = L_K^-1 k_it`` ``(m, n)``,
    ``L_S L_S^T = I + B B^T / noise``."""
    lk = stable_cholesky(k_ii)
    b = torch.linalg.solve_triangular(lk, k_ti.T, upper=False)
    eye = torch.eye(k_ii.shape[0], dtype=k_ii.dtype, device=k_ii.device)
    ls = stable_cholesky(eye + b @ b.T / noise)
    return lk, b, ls


def sgpr_bound(
    k_ii: torch.Tensor, k_ti: torch.Tensor, k_t: torch.Tensor, targets: torch.Tensor, noise: float
) -> torch.Tensor:
    """Titsias' collapsed bound, summed over the ``n_out`` target columns.

    ``sum_c [log N(y_c; 0, Q + noise I)] - n_out * tr(k_tt - Q) / (2 noise)``,
    ``Q = k_ti k_ii^-1 k_it``.
    """
    n, c = targets.shape
    _, b, ls = _factors(k_ii, k_ti, noise)
    # (Q + s I)^-1 = I/s - B^T (s S)^-1 B / s  (Woodbury), S = I + B B^T / s
    proj = torch.linalg.solve_triangular(ls, b @ targets, upper=False)  # (m, c)
    quad = (targets * targets).sum() / noise - (proj * proj).sum() / noise**2
    logdet = n * math.log(noise) + 2 * torch.log(ls.diagonal()).sum()
    trace = (k_t.sum() - (b * b).sum()).clamp_min(0.0)
    fit = -0.5 * (quad + c * logdet + n * c * math.log(2 * math.pi))
    bound: torch.Tensor = fit - c * trace / (2 * noise)
    return bound


def sgpr_predict(
    k_ii: torch.Tensor,
    k_ti: torch.Tensor,
    targets: torch.Tensor,
    noise: float,
    k_si: torch.Tensor,
    k_s: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictive mean ``(n_s, n_out)`` and latent variance ``(n_s,)`` at new points.

    Args:
        k_ii: ``(m, m)`` inducing kernel; k_ti: ``(n, m)`` train-inducing kernel;
        targets: ``(n, n_out)``; k_si: ``(n_s, m)``; k_s: ``(n_s,)`` prior diagonal.
    """
    lk, b, ls = _factors(k_ii, k_ti, noise)
    bs = torch.linalg.solve_triangular(lk, k_si.T, upper=False)  # (m, n_s)
    cs = torch.linalg.solve_triangular(ls, bs, upper=False)
    proj = torch.linalg.solve_triangular(ls, b @ targets, upper=False)
    mean = cs.T @ proj / noise
    var = k_s - (bs * bs).sum(0) + (cs * cs).sum(0)
    return mean, var.clamp_min(0.0)
