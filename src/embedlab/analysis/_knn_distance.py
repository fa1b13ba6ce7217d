"""Exact k-nearest neighbours under any embedlab :class:`~embedlab.losses.Distance`.

For a learned or non-Euclidean metric (e.g. :class:`~embedlab.losses.NeuralSnowflake`) there is
no matmul shortcut to rank candidates with: every pair is computed with the distance's own
``pairwise`` in float64, one block of rows at a time (``O(n^2)`` distance evaluations, memory
``O(block * n)``), and the ``k`` smallest of each row are kept, ties broken by index.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from embedlab._validation import check_enough_points, check_int, check_points
from embedlab.losses.distances import Distance

__all__ = ["knn_distance"]

# Distance entries per block of rows (float64): 2**23 entries = 64 MiB.
_BLOCK_ENTRIES = 1 << 23


def knn_distance(
    x: Any, k: int, distance: Distance, *, name: str = "X"
) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices of the ``k`` nearest other points of every point under ``distance``.

    Args:
        x: ``(n_points, dim)`` numpy array or torch tensor.
        k: neighbours per point, ``1 <= k <= n_points - 1``.
        distance: any :class:`~embedlab.losses.Distance`; a similarity (``is_inverted``, e.g.
            cosine) ranks the most similar first.
        name: the argument's name in error messages.

    Returns:
        ``(values, idx)``: ``(n_points, k)`` float64 values of ``distance.pairwise`` (distances
        increasing, or similarities decreasing for an inverted one) and ``(n_points, k)`` int64
        indices; a point is never its own neighbour; ties go to the lower index.
    """
    if not isinstance(distance, Distance):
        raise TypeError(
            f"distance must be an embedlab Distance (e.g. LpDistance(), NeuralSnowflake(dim)), "
            f"got {type(distance).__name__}"
        )
    pts = check_points(name, x)
    k = check_int("k", k, min_value=1)
    n = pts.shape[0]
    check_enough_points(name, n, k + 1, f"k={k} nearest neighbours (plus the point itself)")
    xt = torch.from_numpy(np.ascontiguousarray(pts, dtype=np.float64))
    block = max(1, min(n, _BLOCK_ENTRIES // n))
    values = np.empty((n, k), dtype=np.float64)
    idx = np.empty((n, k), dtype=np.int64)
    was_training = bool(getattr(distance, "training", False))
    if isinstance(distance, torch.nn.Module):
        distance.eval()
    try:
        with torch.no_grad():
            for start in range(0, n, block):
                stop = min(n, start + block)
                raw = distance.pairwise(xt[start:stop], xt).to(torch.float64).numpy()
                key = distance.as_distance(torch.from_numpy(raw)).numpy().copy()
                if np.isnan(key).any():
                    raise ValueError(f"distance gave NaN between points of {name}")
                rows = np.arange(stop - start)
                key[rows, rows + start] = np.inf  # not its own neighbour
                order = np.argsort(key, axis=1, kind="stable")[:, :k]  # ties: lower index
                idx[start:stop] = order
                values[start:stop] = np.take_along_axis(raw, order, axis=1)
    finally:
        if isinstance(distance, torch.nn.Module) and was_training:
            distance.train()
    return values, idx
