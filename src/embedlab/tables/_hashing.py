"""Seeded universal hashing of non-negative int64 ids, shared by hashing tables.

h(x) = ((a * x + b) mod p) mod m with p = 2**31 - 1 (Carter-Wegman). Ids are
first folded into [0, p) so the product a * x stays inside int64.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["MERSENNE_PRIME", "hash_coefficients", "universal_hash"]

MERSENNE_PRIME = 2**31 - 1


def hash_coefficients(n: int, seed: int) -> torch.Tensor:
    """``n`` independent (a, b) pairs, shape ``(n, 2)`` int64, with 1 <= a < p, 0 <= b < p."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, MERSENNE_PRIME, size=n, dtype=np.int64)
    b = rng.integers(0, MERSENNE_PRIME, size=n, dtype=np.int64)
    return torch.from_numpy(np.stack([a, b], axis=1))


def universal_hash(
    ids: torch.Tensor, coef: torch.Tensor, buckets: int | torch.Tensor
) -> torch.Tensor:
    """Hash ``ids`` into ``[0, buckets)``.

    Args:
        ids: int64 tensor of any shape ``(..., k)`` whose last axis lines up with ``coef``,
            or any shape when ``coef`` is a single pair ``(2,)``.
        coef: ``(k, 2)`` or ``(2,)`` int64 coefficients from :func:`hash_coefficients`.
        buckets: number of buckets (int or a tensor broadcastable to ``ids``).
    """
    x = ids.to(torch.int64) % MERSENNE_PRIME
    a = coef[..., 0]
    b = coef[..., 1]
    # a, x < 2**31 so a * x < 2**62: no int64 overflow.
    return ((a * x + b) % MERSENNE_PRIME) % buckets
