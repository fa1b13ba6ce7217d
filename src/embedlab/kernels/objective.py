"""The deep-kernel-machine objective: Gaussian log-likelihood minus nu-weighted KL terms.

``L(G_1..G_L) = log P(Y | G_L) - sum_l nu_l * KL(N(0, G_l) || N(0, K(G_{l-1})))``

Yang, Robeyns, Milsom, Anson, Schoots, Aitchison, "A theory of representation learning
gives a deep generalisation of kernel methods", ICML 2023. ``K`` is the NNGP kernel of a
ReLU layer (:func:`~embedlab.kernels.relu_kernel`); the readout is GP regression of the
(centred) one-hot labels with noise variance ``noise``:
``log P(Y | G_L) = sum_c log N(y_c; 0, K(G_L) + noise * I)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from embedlab.kernels.relu_kernel import relu_kernel

__all__ = ["dkm_objective", "gaussian_kl", "gp_log_likelihood", "stable_cholesky"]


def stable_cholesky(a: torch.Tensor, *, jitter: float = 1e-10) -> torch.Tensor:
    """Cholesky factor of a PSD matrix, adding ``jitter * mean(diag)`` (growing x10) on failure."""
    scale = float(a.diagonal().mean().detach().clamp_min(1e-300))
    eye = torch.eye(a.shape[0], dtype=a.dtype, device=a.device)
    extra = 0.0
    for _ in range(8):
        chol, info = torch.linalg.cholesky_ex(a + extra * scale * eye)
        if int(info) == 0:
            out: torch.Tensor = chol
            return out
        extra = jitter if extra == 0.0 else extra * 10
    raise ValueError(
        f"matrix is not positive definite even with {extra:g} x mean(diag) added to its diagonal"
    )


def gaussian_kl(gram: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """``KL(N(0, gram) || N(0, prior))`` for one feature column, both ``(n, n)``.

    ``0.5 * (tr(prior^-1 gram) - n + log|prior| - log|gram|)``.
    """
    n = gram.shape[0]
    lp = stable_cholesky(prior)
    lg = stable_cholesky(gram)
    # tr(P^-1 G) = ||Lp^-1 Lg||_F^2
    m = torch.linalg.solve_triangular(lp, lg, upper=False)
    logdet_p = 2 * torch.log(lp.diagonal()).sum()
    logdet_g = 2 * torch.log(lg.diagonal()).sum()
    kl: torch.Tensor = 0.5 * ((m * m).sum() - n + logdet_p - logdet_g)
    return kl


def gp_log_likelihood(kernel: torch.Tensor, targets: torch.Tensor, noise: float) -> torch.Tensor:
    """``sum_c log N(targets[:, c]; 0, kernel + noise * I)``; ``targets`` is ``(n, n_out)``."""
    n, c = targets.shape
    eye = torch.eye(n, dtype=kernel.dtype, device=kernel.device)
    chol = stable_cholesky(kernel + noise * eye)
    alpha = torch.linalg.solve_triangular(chol, targets, upper=False)
    logdet = 2 * torch.log(chol.diagonal()).sum()
    ll: torch.Tensor = -0.5 * ((alpha * alpha).sum() + c * logdet + n * c * math.log(2 * math.pi))
    return ll


def dkm_objective(
    grams: Sequence[torch.Tensor],
    input_gram: torch.Tensor,
    targets: torch.Tensor,
    nu: Sequence[float],
    *,
    noise: float,
) -> torch.Tensor:
    """The full (non-sparse) DKM objective, to be maximised.

    Args:
        grams: the learned ``G_1..G_L``, each ``(n, n)`` PSD.
        input_gram: ``G_0 = X X^T / d_in``, ``(n, n)``.
        targets: ``(n, n_out)`` regression targets (e.g. centred one-hot labels).
        nu: one positive weight per layer.
        noise: likelihood noise variance.

    Returns:
        a scalar: log-likelihood minus the weighted KL terms.
    """
    if len(nu) != len(grams):
        raise ValueError(f"nu must have one value per layer ({len(grams)}), got {len(nu)}")
    total = targets.new_zeros(())
    prev = input_gram
    for g, w in zip(grams, nu, strict=True):
        if math.isfinite(w):
            total = total - w * gaussian_kl(g, relu_kernel(prev))
        prev = g
    return total + gp_log_likelihood(relu_kernel(prev), targets, noise)
