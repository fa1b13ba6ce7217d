"""A small seeded spherical k-means (cosine) for losses that cluster their embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["spherical_kmeans"]


def spherical_kmeans(x: torch.Tensor, k: int, *, seed: int, iters: int = 20) -> torch.Tensor:
    """``(k, dim)`` unit centroids of the rows of ``x (n, dim)`` (n >= k), k-means++ start.

    Deterministic for a given ``seed`` (its own ``torch.Generator``; the global RNG is
    untouched). Rows are L2-normalised; assignment by largest cosine similarity.
    """
    z = F.normalize(x.detach().to(torch.float64), dim=1)
    gen = torch.Generator().manual_seed(seed)
    first = int(torch.randint(z.shape[0], (1,), generator=gen))
    cents = [z[first]]
    for _ in range(1, k):
        sims = torch.stack(cents) @ z.T  # (j, n)
        d2 = (2 - 2 * sims.max(0).values).clamp_min(0)  # squared distance to the nearest centroid
        probs = d2 / d2.sum() if float(d2.sum()) > 0 else torch.full_like(d2, 1 / len(d2))
        cents.append(z[int(torch.multinomial(probs.cpu(), 1, generator=gen))])
    c = torch.stack(cents)
    for _ in range(iters):
        assign = (z @ c.T).argmax(1)
        new = torch.zeros_like(c).index_add_(0, assign, z)
        empty = new.norm(dim=1) == 0
        new[empty] = c[empty]  # an empty cluster keeps its centroid
        new = F.normalize(new, dim=1)
        if torch.equal(new, c):
            break
        c = new
    return c.to(x.dtype)
