"""DEPICT's start clustering of the clean embeddings: AC-PIC, k-means, spectral or
agglomerative.

The reference code starts MNIST-test from AC-PIC (agglomerative clustering via maximum
incremental path integral on a 20-NN digraph, :mod:`embedlab.cluster.acpic`) and
MNIST-full from k-means; ``"agglomerative"`` is Ward linkage restricted to the
symmetrised k-NN graph (scikit-learn).
"""

from __future__ import annotations

import numpy as np

from embedlab.cluster.kmeans import kmeans_fit

__all__ = ["INIT_METHODS", "cluster_means", "start_clustering"]

#: the start clusterings ``DEPICTClusterer(init=...)`` accepts
INIT_METHODS = ("acpic", "agglomerative", "kmeans", "spectral")

#: graph degree of each graph-based start when ``init_neighbors`` is not given (AC-PIC: 20,
#: the reference code's)
DEFAULT_NEIGHBORS = {"acpic": 20, "agglomerative": 10, "spectral": 10}


def cluster_means(emb: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Mean ``(n_clusters, dim)`` of each cluster's rows of ``emb (n, dim)``; 0 for an empty
    cluster."""
    means = np.zeros((n_clusters, emb.shape[1]), dtype=np.float64)
    counts = np.bincount(labels, minlength=n_clusters)
    np.add.at(means, labels, emb)
    nonempty = counts > 0
    means[nonempty] /= counts[nonempty, None]
    return means.astype(np.float32)


def agglomerative_labels(emb: np.ndarray, n_clusters: int, *, n_neighbors: int) -> np.ndarray:
    """Ward linkage over ``emb (n, dim)`` where only clusters joined by an edge of the
    symmetrised ``n_neighbors``-NN graph may merge (deterministic)."""
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.neighbors import kneighbors_graph

    k = min(n_neighbors, emb.shape[0] - 1)
    graph = kneighbors_graph(emb, n_neighbors=k, include_self=False)
    model = AgglomerativeClustering(n_clusters=n_clusters, linkage="ward", connectivity=graph)
    return np.asarray(model.fit_predict(emb), dtype=np.int64)


def start_clustering(
    emb: np.ndarray, n_clusters: int, *, method: str, seed: int, n_neighbors: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Labels ``(n,)`` and cluster means ``(n_clusters, dim)`` of the clean embeddings
    ``emb (n, dim)`` by ``method`` (one of :data:`INIT_METHODS`): k-means with 40 starts
    (the reference's), AC-PIC on the ``n_neighbors``-NN digraph, spectral clustering of
    the ``n_neighbors``-NN graph, or Ward agglomeration on it (:func:`agglomerative_labels`)."""
    if method == "kmeans":
        labels, centroids = kmeans_fit(emb, n_clusters, seed=seed, n_init=40)
        return np.asarray(labels, dtype=np.int64), np.asarray(centroids, dtype=np.float32)
    k = min(n_neighbors, emb.shape[0] - 1)
    if method == "spectral":
        from embedlab.cluster.spectral import SpectralClusterer

        spectral = SpectralClusterer(n_clusters=n_clusters, seed=seed, n_neighbors=k)
        labels = np.asarray(spectral.fit_predict(emb), dtype=np.int64)
    elif method == "acpic":
        from embedlab.cluster.acpic import acpic_labels

        labels = acpic_labels(emb.astype(np.float64), n_clusters, n_neighbors=k)
    elif method == "agglomerative":
        labels = agglomerative_labels(emb, n_clusters, n_neighbors=n_neighbors)
    else:  # validated by the clusterer
        raise ValueError(f"init must be one of {', '.join(INIT_METHODS)}; got {method!r}")
    return labels, cluster_means(emb, labels, n_clusters)
