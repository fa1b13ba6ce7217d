"""k-means, the reference clusterer (scikit-learn or faiss)."""

from __future__ import annotations

from typing import Literal

import numpy as np

from embedlab._validation import check_choice, check_int
from embedlab.cluster._base import Clusterer
from embedlab.cluster._registry import register_clusterer

__all__ = ["KMeansClusterer", "kmeans_fit"]

Backend = Literal["sklearn", "faiss"]


def kmeans_fit(
    x: np.ndarray,
    n_clusters: int,
    *,
    seed: int = 0,
    n_init: int = 10,
    max_iter: int = 300,
    backend: Backend = "sklearn",
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means (k-means++ starts with scikit-learn), the best of ``n_init`` runs.

    Args:
        x: ``(n, dim)`` samples.
        n_clusters: k.
        seed: seeds the starts.
        n_init: restarts; the lowest inertia wins.
        max_iter: iterations per run.
        backend: ``"sklearn"`` (exact, float64) or ``"faiss"`` (float32, faster on large n).

    Returns:
        ``(labels (n,) int64, centroids (n_clusters, dim) float32)``.
    """
    if backend == "faiss":
        import faiss

        data = np.ascontiguousarray(x, dtype=np.float32)
        km = faiss.Kmeans(
            data.shape[1], n_clusters, niter=max_iter, nredo=n_init, seed=seed + 1, verbose=False
        )
        km.train(data)
        centroids = np.asarray(km.centroids, dtype=np.float32)
        _, idx = km.index.search(data, 1)
        return idx[:, 0].astype(np.int64), centroids
    from sklearn.cluster import KMeans

    model = KMeans(n_clusters=n_clusters, n_init=n_init, max_iter=max_iter, random_state=seed)
    labels = model.fit_predict(x.astype(np.float64))
    return labels.astype(np.int64), model.cluster_centers_.astype(np.float32)


@register_clusterer("kmeans")
class KMeansClusterer(Clusterer):
    """k-means on the flattened samples: each point goes to its nearest of ``n_clusters``
    centroids. The reference method of the family.

    Lloyd, "Least squares quantization in PCM", 1982; Arthur & Vassilvitskii,
    "k-means++: the advantages of careful seeding", SODA 2007.

    Args:
        n_clusters: k, ``>= 2``.
        seed: seeds the k-means++ starts.
        n_init: restarts, ``>= 1``; the lowest inertia wins.
        max_iter: Lloyd iterations per run, ``>= 1``.
        backend: ``"sklearn"`` or ``"faiss"``.

    Shapes:
        ``fit_predict(x (n, dim) or (n, c, h, w)) -> (n,)``; ``cluster_centers_ (k, dim)``.

    Example:
        >>> import numpy as np
        >>> x = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
        >>> labels = KMeansClusterer(n_clusters=2).fit_predict(x)
        >>> bool(labels[0] == labels[1] != labels[2] == labels[3])
        True
    """

    input_ndims = (2, 4)

    def __init__(
        self,
        *,
        n_clusters: int = 8,
        seed: int = 0,
        n_init: int = 10,
        max_iter: int = 300,
        backend: str = "sklearn",
    ) -> None:
        super().__init__(n_clusters=n_clusters, seed=seed)
        self.n_init = check_int("n_init", n_init, min_value=1)
        self.max_iter = check_int("max_iter", max_iter, min_value=1)
        self.backend = check_choice("backend", backend, ("sklearn", "faiss"))
        self.cluster_centers_: np.ndarray | None = None

    def _fit(self, x: np.ndarray) -> np.ndarray:
        labels, self.cluster_centers_ = kmeans_fit(
            x.reshape(x.shape[0], -1),
            self.n_clusters,
            seed=self.seed,
            n_init=self.n_init,
            max_iter=self.max_iter,
            backend=self.backend,  # type: ignore[arg-type]
        )
        return labels

    def _predict(self, x: np.ndarray) -> np.ndarray:
        assert self.cluster_centers_ is not None
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.cluster_centers_.shape[1]:
            raise ValueError(
                f"X must have {self.cluster_centers_.shape[1]} features as in fit, "
                f"got {flat.shape[1]}"
            )
        d2 = (
            (flat**2).sum(1, keepdims=True)
            - 2 * flat @ self.cluster_centers_.T
            + (self.cluster_centers_**2).sum(1)
        )
        return np.asarray(np.argmin(d2, axis=1))
