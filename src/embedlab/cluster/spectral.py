"""Spectral clustering of a k-nearest-neighbour graph, and of any affinity matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from embedlab._validation import check_int
from embedlab.cluster._base import Clusterer
from embedlab.cluster._registry import register_clusterer
from embedlab.cluster.kmeans import kmeans_fit

__all__ = ["SpectralClusterer", "spectral_labels"]

#: up to this many samples the eigenvectors come from a dense ``eigh``
DENSE_EIGH = 3000


def spectral_labels(affinity: Any, n_clusters: int, *, seed: int = 0) -> np.ndarray:
    """Ng-Jordan-Weiss spectral clustering of a symmetric non-negative affinity ``(n, n)``.

    The ``n_clusters`` leading eigenvectors of ``D^{-1/2} A D^{-1/2}`` (dense or
    ``scipy.sparse``), rows normalised to unit length, then k-means.

    Ng, Jordan & Weiss, "On spectral clustering: analysis and an algorithm", NeurIPS 2001.

    Returns:
        ``(n,)`` int64 labels.
    """
    import scipy.sparse as sp
    from scipy.sparse.linalg import eigsh

    n = affinity.shape[0]
    degree = np.asarray(affinity.sum(axis=1)).ravel()
    inv_sqrt = 1.0 / np.sqrt(np.maximum(degree, 1e-12))
    if sp.issparse(affinity):
        norm = sp.diags(inv_sqrt) @ affinity @ sp.diags(inv_sqrt)
    else:
        dense = np.asarray(affinity)
        dense = dense if dense.dtype == np.float32 else dense.astype(np.float64)
        norm = inv_sqrt[:, None].astype(dense.dtype) * dense * inv_sqrt[None, :].astype(dense.dtype)
    if n <= DENSE_EIGH:  # exact; Lanczos can miss repeated eigenvalues (disconnected graphs)
        dense_norm = norm.toarray() if sp.issparse(norm) else norm
        vecs = np.linalg.eigh(dense_norm.astype(np.float64))[1][:, -n_clusters:]
    else:
        v0 = np.random.default_rng(seed).uniform(-1, 1, n)
        ncv = min(n, max(2 * n_clusters + 1, 40))
        _, vecs = eigsh(norm, k=n_clusters, which="LA", v0=v0, ncv=ncv)
    vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    return kmeans_fit(vecs, n_clusters, seed=seed)[0]


@register_clusterer("spectral")
class SpectralClusterer(Clusterer):
    """Spectral clustering of the symmetrised k-nearest-neighbour graph of the samples.

    Edges join each sample to its ``n_neighbors`` nearest (Euclidean) neighbours, weight 1,
    symmetrised by ``(A + Aᵀ) / 2``; see :func:`spectral_labels`. No ``predict``.

    Args:
        n_clusters: ``>= 2``.
        seed: seeds the eigensolver start and the k-means.
        n_neighbors: graph degree, ``>= 1`` (and below the number of samples).

    Example:
        >>> import numpy as np
        >>> x = np.r_[np.zeros((5, 2)), np.ones((5, 2)) * 9] + np.arange(10)[:, None] * 0.01
        >>> labels = SpectralClusterer(n_clusters=2, n_neighbors=3).fit_predict(x)
        >>> len(set(labels[:5])), len(set(labels))
        (1, 2)
    """

    input_ndims = (2, 4)

    def __init__(self, *, n_clusters: int = 8, seed: int = 0, n_neighbors: int = 10) -> None:
        super().__init__(n_clusters=n_clusters, seed=seed)
        self.n_neighbors = check_int("n_neighbors", n_neighbors, min_value=1)

    def _fit(self, x: np.ndarray) -> np.ndarray:
        from sklearn.neighbors import kneighbors_graph

        flat = x.reshape(x.shape[0], -1)
        if self.n_neighbors >= flat.shape[0]:
            raise ValueError(
                f"n_neighbors must be < the number of samples ({flat.shape[0]}), "
                f"got {self.n_neighbors}"
            )
        graph = kneighbors_graph(flat, self.n_neighbors, include_self=False)
        return spectral_labels((graph + graph.T) * 0.5, self.n_clusters, seed=self.seed)
