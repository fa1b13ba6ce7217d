"""A generated regression task on 2-D point sets with mixed, approximate symmetries.

``y(X) = mean_{i<j} cos(|x_i - x_j|) + alpha * |mean_i x_i|^2`` for ``X`` of ``n_points``
points in the plane:

- exactly invariant to rotations about the origin (distances and the centroid's norm are);
- approximately invariant to translations (the distances are; the centroid term, of size
  ``alpha``, is not);
- not invariant to scaling (the distances change).

Also the two invariant-by-construction feature maps the benchmark compares against.
"""

from __future__ import annotations

import torch
from torch import nn

from embedlab._validation import check_float_in_range, check_int

__all__ = ["InvariantFeatures", "mixed_symmetry_target", "mixed_symmetry_task"]


def mixed_symmetry_target(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """``y (n, 1)`` of point sets ``x (n, n_points, 2)``."""
    d = torch.cdist(x, x)  # (n, p, p)
    p = x.shape[1]
    iu = torch.triu_indices(p, p, offset=1)
    pair = torch.cos(d[:, iu[0], iu[1]]).mean(dim=1)
    centroid = x.mean(dim=1).pow(2).sum(dim=1)
    return (pair + alpha * centroid)[:, None]


def mixed_symmetry_task(
    n: int, *, n_points: int = 4, alpha: float = 0.2, noise: float = 0.0, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x (n, n_points, 2), y (n, 1))``: points ~ N(0, I), targets of
    :func:`mixed_symmetry_target` plus Gaussian noise of std ``noise``."""
    check_int("n", n, min_value=1)
    check_int("n_points", n_points, min_value=3)
    check_float_in_range("alpha", alpha, 0.0, 100.0)
    check_float_in_range("noise", noise, 0.0, 100.0)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, n_points, 2, generator=gen)
    y = mixed_symmetry_target(x, alpha)
    if noise > 0:
        y = y + noise * torch.randn(y.shape, generator=gen)
    return x, y


class InvariantFeatures(nn.Module):
    """Invariant-by-construction inputs for an MLP on point sets ``(n, p, 2)``.

    ``kind="rotation"``: the Gram matrix ``X X^T`` (upper triangle), invariant exactly to
    rotations (and reflections) about the origin; ``kind="euclidean"``: pairwise distances,
    invariant to rotations and translations.
    """

    def __init__(self, n_points: int, kind: str = "rotation") -> None:
        super().__init__()
        if kind not in ("rotation", "euclidean"):
            raise ValueError(f"kind must be one of euclidean, rotation; got {kind!r}")
        self.kind = kind
        offset = 0 if kind == "rotation" else 1
        self.register_buffer("iu", torch.triu_indices(n_points, n_points, offset=offset))
        self.out_dim = int(n_points * (n_points + 1) // 2 - (n_points if offset else 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, p, 2)`` -> ``(n, out_dim)`` invariant features."""
        m = x @ x.transpose(1, 2) if self.kind == "rotation" else torch.cdist(x, x)
        iu: torch.Tensor = self.iu  # type: ignore[assignment]
        return m[:, iu[0], iu[1]]
