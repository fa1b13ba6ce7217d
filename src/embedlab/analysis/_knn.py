"""Exact k-nearest neighbours of every point of a cloud among the others (self excluded).

Candidates come from float32 squared distances ``|x|^2 + |y|^2 - 2 x.y`` (one BLAS matmul per
block of rows, or faiss ``IndexFlatL2`` when installed); the distances of the kept candidates
are then recomputed in float64 from the coordinates, so the returned distances are exact
even where the float32 shortcut loses digits (near-duplicates far from the origin). The data
are rescaled by a power of two (exact) and centred first, which keeps the norms small and the
shortcut accurate at any magnitude (1e200 or 1e-200 neither overflows nor underflows).
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
import torch

from embedlab._validation import check_choice, check_enough_points, check_int, check_points
from embedlab.analysis._knn_distance import knn_distance
from embedlab.analysis._scale import pow2_scale
from embedlab.losses.distances import Distance

__all__ = ["faiss_available", "knn", "knn_scaled"]

Backend = Literal["auto", "torch", "faiss"]

# Extra candidates kept past k before the float64 re-ranking, against float32 ties/round-off.
_MARGIN = 4
# Distance entries per block of rows (float32): 2**25 entries = 128 MiB.
_BLOCK_ENTRIES = 1 << 25


def faiss_available() -> bool:
    """True when ``faiss`` (the ``[faiss]`` extra) can be imported."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def knn(
    x: Any,
    k: int,
    *,
    backend: Backend = "auto",
    name: str = "X",
    distance: Distance | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices of the ``k`` nearest other points of every point.

    Args:
        x: ``(n_points, dim)`` numpy array or torch tensor.
        k: neighbours per point, ``1 <= k <= n_points - 1``.
        backend: ``"faiss"`` (``IndexFlatL2``), ``"torch"`` (blocked matmul) or ``"auto"``
            (faiss when importable).
        name: the argument's name in error messages.
        distance: ``None`` (default): Euclidean, as below. Any embedlab
            :class:`~embedlab.losses.Distance` (e.g. a learned
            :class:`~embedlab.losses.NeuralSnowflake`): exact brute force under it
            (``backend`` unused), see :func:`~embedlab.analysis._knn_distance.knn_distance`;
            ``dist`` then holds its values (similarities, decreasing, for cosine / dot).

    Returns:
        ``(dist, idx)``: ``(n_points, k)`` float64 Euclidean distances in increasing order
        (ties broken by index) and ``(n_points, k)`` int64 indices. A point is never its own
        neighbour, but an exact duplicate of it is (at distance 0). A distance beyond float64's
        range (points near 1e308 apart) is ``inf``, with a ``UserWarning`` that counts them.

    Example:
        >>> dist, idx = knn(np.random.default_rng(0).normal(size=(100, 5)), k=3)
        >>> dist.shape, idx.shape
        ((100, 3), (100, 3))
    """
    if distance is not None:
        return knn_distance(x, k, distance, name=name)
    dist, idx, scale = knn_scaled(x, k, backend=backend, name=name)
    with np.errstate(over="ignore"):
        out = dist * scale
    n_inf = int(np.isinf(out).sum())
    if n_inf:
        warnings.warn(
            f"knn: {n_inf} of {out.size} neighbour distances of {name} exceed float64's range "
            "(1.8e308) and are inf; rescale the data (estimators built on ratios, like twonn, "
            "are unaffected)",
            UserWarning,
            stacklevel=2,
        )
    return out, idx


def knn_scaled(
    x: Any, k: int, *, backend: Backend = "auto", name: str = "X"
) -> tuple[np.ndarray, np.ndarray, float]:
    """:func:`knn` with the distances divided by a power of two: ``(dist, idx, scale)``.

    ``dist * scale`` are the distances; estimators that use only ratios of distances
    (TwoNN, MLE) take ``dist`` as it is, which never overflows.
    """
    pts = check_points(name, x)
    k = check_int("k", k, min_value=1)
    check_choice("backend", backend, ("auto", "torch", "faiss"))
    n = pts.shape[0]
    check_enough_points(name, n, k + 1, f"k={k} nearest neighbours (plus the point itself)")
    scaled, scale = pow2_scale(pts)
    centred = scaled - scaled.mean(axis=0)
    x32 = np.ascontiguousarray(centred, dtype=np.float32)
    n_cand = min(n - 1, k + _MARGIN)
    use_faiss = backend == "faiss" or (backend == "auto" and faiss_available())
    if backend == "faiss" and not faiss_available():
        raise ImportError("backend='faiss' needs faiss: pip install 'embedlab[faiss]'")
    cand = _candidates_faiss(x32, n_cand) if use_faiss else _candidates_torch(x32, n_cand)
    dist, idx = _rerank(centred, cand, k)
    return dist, idx, float(scale)


def _candidates_torch(x32: np.ndarray, n_cand: int) -> np.ndarray:
    n = x32.shape[0]
    xt = torch.from_numpy(x32)
    sq = (xt * xt).sum(dim=1)
    block = max(1, min(n, _BLOCK_ENTRIES // n))
    out = np.empty((n, n_cand), dtype=np.int64)
    with torch.inference_mode():
        for start in range(0, n, block):
            stop = min(n, start + block)
            rows = torch.arange(stop - start)
            d2 = torch.addmm(sq[None, :], xt[start:stop], xt.T, beta=1.0, alpha=-2.0)
            d2 += sq[start:stop, None]  # (block, n) squared distances
            d2[rows, rows + start] = float("inf")  # not its own neighbour
            out[start:stop] = torch.topk(d2, n_cand, dim=1, largest=False).indices.numpy()
    return out


def _candidates_faiss(x32: np.ndarray, n_cand: int) -> np.ndarray:
    import faiss

    n, dim = x32.shape
    index = faiss.IndexFlatL2(dim)
    index.add(x32)
    n_search = min(n, n_cand + 1)
    _, idx = index.search(x32, n_search)
    idx = np.asarray(idx, dtype=np.int64)
    # Drop the point itself wherever it appears; with duplicates it may not come first,
    # and when it is crowded out by them the last candidate is dropped instead.
    not_self = idx != np.arange(n)[:, None]
    order = np.argsort(~not_self, axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1)[:, :n_cand]


def _rerank(centred: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact float64 distances of the candidates; keep the ``k`` smallest (ties by index)."""
    n, n_cand = cand.shape
    dim = centred.shape[1]
    dist = np.empty((n, n_cand), dtype=np.float64)
    block = max(1, (1 << 24) // max(1, n_cand * dim))
    for start in range(0, n, block):
        stop = min(n, start + block)
        diff = centred[cand[start:stop]] - centred[start:stop, None, :]  # (block, n_cand, dim)
        dist[start:stop] = np.sqrt(np.einsum("bcd,bcd->bc", diff, diff))
    order = np.lexsort((cand, dist), axis=1)[:, :k]
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(cand, order, axis=1)
