"""The NNGP kernel of a ReLU layer (arc-cosine kernel of order 1, He-scaled).

For pre-activations ``(u, v) ~ N(0, [[a, c], [c, b]])`` a ReLU layer with weight variance
2 / fan-in has next-layer covariance
``K = (1/pi) * sqrt(a b) * (sin t + (pi - t) cos t)``, ``t = arccos(c / sqrt(a b))``
(Cho & Saul 2009), so ``K(a, a) = a``: the diagonal is preserved layer to layer.
"""

from __future__ import annotations

import math

import torch

__all__ = ["relu_kernel", "relu_kernel_cross"]

# keeps arccos away from +-1, where its derivative is infinite
_CLAMP = 1.0 - 1e-7


def relu_kernel_cross(
    cross: torch.Tensor, diag_a: torch.Tensor, diag_b: torch.Tensor
) -> torch.Tensor:
    """Kernel between two point sets from their Gram block.

    Args:
        cross: ``(n_a, n_b)`` inner products of the previous layer.
        diag_a: ``(n_a,)`` squared norms of the first set.
        diag_b: ``(n_b,)`` squared norms of the second set.

    Returns:
        ``(n_a, n_b)`` next-layer covariances.
    """
    norm = torch.sqrt(diag_a.clamp_min(1e-300))[:, None] * torch.sqrt(diag_b.clamp_min(1e-300))
    cos = (cross / norm).clamp(-_CLAMP, _CLAMP)
    theta = torch.arccos(cos)
    return norm * (torch.sin(theta) + (math.pi - theta) * cos) / math.pi


def relu_kernel(gram: torch.Tensor) -> torch.Tensor:
    """``(n, n)`` kernel of a ``(n, n)`` Gram matrix (its diagonal is kept exactly)."""
    d = gram.diagonal()
    k = relu_kernel_cross(gram, d, d)
    # the clamp moves the diagonal by ~1e-10; put it back so K(G)_ii == G_ii
    return k - torch.diag(k.diagonal()) + torch.diag(d)
