"""Semi-supervised k-means (SS-k-means), the assignment step of generalized category discovery."""

from __future__ import annotations

from typing import Any

import numpy as np

from embedlab._validation import check_int, check_positive_float, is_tensor
from embedlab.cluster._base import Clusterer
from embedlab.cluster._registry import register_clusterer

__all__ = ["SSKMeansClusterer", "check_partial_labels", "semi_supervised_kmeans"]

#: the label of an unlabelled sample (scikit-learn's semi-supervised convention)
UNLABELLED = -1


def check_partial_labels(y: Any, n: int, n_clusters: int) -> np.ndarray:
    """``y (n,)`` as int64: ``-1`` for an unlabelled sample, else its cluster in
    ``[0, n_clusters)``; at least one sample must be unlabelled.

    Raises:
        TypeError: ``y`` is not an array of integers.
        ValueError: a wrong shape, a label outside ``[0, n_clusters)`` (other than -1), or
            no unlabelled sample.
    """
    if is_tensor(y):
        y = y.detach().cpu().numpy()
    try:
        arr = np.asarray(y)
    except (TypeError, ValueError):
        raise TypeError(f"y must be an array of integers, got {type(y).__name__}") from None
    if arr.dtype.kind not in "iu":
        raise TypeError(f"y must hold integers (-1 for unlabelled), got dtype {arr.dtype}")
    if arr.shape != (n,):
        raise ValueError(f"y must have shape ({n},) like X's first axis, got {arr.shape}")
    arr = arr.astype(np.int64)
    bad = np.flatnonzero((arr != UNLABELLED) & ((arr < 0) | (arr >= n_clusters)))
    if bad.size:
        raise ValueError(
            f"y must be -1 (unlabelled) or a cluster in [0, n_clusters={n_clusters}), "
            f"got {int(arr[bad[0]])} at index {int(bad[0])}"
        )
    if not (arr == UNLABELLED).any():
        raise ValueError(f"y must leave at least one sample unlabelled (-1), got all {n} labelled")
    return arr


def _sq_dists(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(n, k)`` (clipped at 0 against round-off)."""
    d2 = (x**2).sum(1, keepdims=True) - 2.0 * x @ centres.T + (centres**2).sum(1)
    return np.asarray(np.maximum(d2, 0.0))


def _seed_centres(
    x: np.ndarray, y: np.ndarray, n_clusters: int, rng: np.random.Generator
) -> np.ndarray:
    """Labelled clusters start at their labelled mean; the others by k-means++ over the
    unlabelled samples, in increasing cluster id, each drawn with probability proportional to
    the squared distance to the nearest centre chosen so far (labelled means included)."""
    centres = np.zeros((n_clusters, x.shape[1]))
    fixed = np.unique(y[y != UNLABELLED])
    for c in fixed:
        centres[c] = x[y == c].mean(0)
    pool = x[y == UNLABELLED]
    free = [c for c in range(n_clusters) if c not in set(fixed.tolist())]
    chosen = [int(c) for c in fixed]
    for c in free:
        if not chosen:
            pick = int(rng.integers(pool.shape[0]))
        else:
            d2 = _sq_dists(pool, centres[chosen]).min(1)
            total = d2.sum()
            if total <= 0.0:  # every pool sample sits on a centre: draw uniformly
                pick = int(rng.integers(pool.shape[0]))
            else:
                cum = np.cumsum(d2 / total)
                pick = min(int(np.searchsorted(cum, rng.random(), side="left")), pool.shape[0] - 1)
        centres[c] = pool[pick]
        chosen.append(c)
    return centres


def semi_supervised_kmeans(
    x: Any,
    y: Any,
    n_clusters: int,
    *,
    seed: int = 0,
    n_init: int = 10,
    max_iter: int = 100,
    tol: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Semi-supervised k-means: Lloyd's iterations with the labelled samples held in their
    class's cluster.

    Each of ``n_init`` runs seeds the centres (labelled clusters at their labelled mean, the
    others by k-means++ over the unlabelled samples), then alternates: unlabelled samples to
    their nearest centre (labelled ones stay in cluster ``y``); each centre to the mean of its
    labelled and unlabelled members (a cluster left empty keeps its centre). A run stops when
    ``(sum of the centres' moves)^2 < tol`` or after ``max_iter`` iterations and keeps the
    assignment of lowest inertia (squared distances of all samples to their cluster's
    centre); the run of lowest inertia wins. As Vaze et al.'s reference code
    (github.com/sgvaze/generalized-category-discovery, ``faster_mix_k_means_pytorch.py``).

    Args:
        x: ``(n, dim)`` samples (computed in float64).
        y: ``(n,)`` ints, ``-1`` for an unlabelled sample, else its cluster in ``[0, k)``.
        n_clusters: k.
        seed: seeds the k-means++ draws (one generator for all runs, in order).
        n_init: runs, ``>= 1``.
        max_iter: iterations per run, ``>= 1``.
        tol: stopping threshold on the squared total centre move, ``>= 0``.

    Returns:
        ``(labels (n,) int64, centres (k, dim) float64, inertia)``; ``labels[y >= 0] ==
        y[y >= 0]``.

    Example:
        >>> import numpy as np
        >>> x = np.array([[0.0], [0.2], [5.0], [5.2], [9.0], [9.2]])
        >>> y = np.array([1, -1, 0, -1, -1, -1])
        >>> semi_supervised_kmeans(x, y, 3)[0].tolist()
        [1, 1, 0, 0, 2, 2]
    """
    data = np.asarray(x, dtype=np.float64)
    n = data.shape[0]
    k = check_int("n_clusters", n_clusters, min_value=2)
    lab = check_partial_labels(y, n, k)
    check_int("n_init", n_init, min_value=1)
    check_int("max_iter", max_iter, min_value=1)
    check_positive_float("tol", tol, strict=False)
    unl = lab == UNLABELLED
    n_free = k - np.unique(lab[~unl]).size
    if int(unl.sum()) < n_free:
        raise ValueError(
            f"y must leave at least {n_free} samples unlabelled to seed the {n_free} clusters "
            f"without a labelled sample, got {int(unl.sum())}"
        )
    rng = np.random.default_rng(seed)
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    for _ in range(n_init):
        run = _one_run(data, lab, unl, _seed_centres(data, lab, k, rng), max_iter, tol)
        if best is None or run[2] < best[2]:
            best = run
    assert best is not None
    return best


def _one_run(
    x: np.ndarray,
    y: np.ndarray,
    unl: np.ndarray,
    centres: np.ndarray,
    max_iter: int,
    tol: float,
) -> tuple[np.ndarray, np.ndarray, float]:
    labels = y.copy()
    k = centres.shape[0]
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    for _ in range(max_iter):
        old = centres
        d2 = _sq_dists(x, centres)  # (n, k)
        labels[unl] = d2[unl].argmin(1)
        inertia = float(d2[np.arange(x.shape[0]), labels].sum())
        sums = np.zeros_like(centres)
        np.add.at(sums, labels, x)
        counts = np.bincount(labels, minlength=k)
        centres = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], old)
        if best is None or inertia < best[2]:
            best = (labels.copy(), centres.copy(), inertia)
        if np.linalg.norm(centres - old, axis=1).sum() ** 2 < tol:
            break
    assert best is not None
    return best


@register_clusterer("ss_kmeans")
class SSKMeansClusterer(Clusterer):
    """Semi-supervised k-means: ``fit(x, y)`` with ``y[i] = -1`` for an unlabelled sample and
    its cluster in ``[0, n_clusters)`` otherwise; labelled samples stay in their cluster,
    the rest is k-means (see :func:`semi_supervised_kmeans`). Without ``y`` it is plain
    k-means with k-means++ starts.

    Vaze, Han, Vedaldi, Zisserman, "Generalized Category Discovery", CVPR 2022 (sec. 3.2),
    the standard GCD assignment step (also HypCD's).

    Args:
        n_clusters: k, ``>= 2``.
        seed: seeds the k-means++ draws.
        n_init: runs, ``>= 1``; the lowest inertia wins.
        max_iter: iterations per run, ``>= 1``.
        tol: stop when the squared total centre move is under ``tol``.

    Shapes:
        ``fit_predict(x (n, dim) or (n, c, h, w), y (n,) | None) -> (n,)``;
        ``cluster_centers_ (k, dim)``; ``predict`` assigns to the nearest centre.

    Example:
        >>> import numpy as np
        >>> x = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
        >>> SSKMeansClusterer(n_clusters=2).fit_predict(x, [-1, 1, -1, -1]).tolist()
        [1, 1, 0, 0]
    """

    input_ndims = (2, 4)
    semi_supervised = True

    def __init__(
        self,
        *,
        n_clusters: int = 8,
        seed: int = 0,
        n_init: int = 10,
        max_iter: int = 100,
        tol: float = 1e-4,
    ) -> None:
        super().__init__(n_clusters=n_clusters, seed=seed)
        self.n_init = check_int("n_init", n_init, min_value=1)
        self.max_iter = check_int("max_iter", max_iter, min_value=1)
        self.tol = check_positive_float("tol", tol, strict=False)
        self.cluster_centers_: np.ndarray | None = None
        self.inertia_: float | None = None

    def fit(self, x: Any, y: Any = None) -> SSKMeansClusterer:
        """Cluster ``x`` with the partial labels ``y`` (``-1``: unlabelled; ``None``: none
        labelled). Returns ``self``."""
        arr = self._check(x)
        flat = arr.reshape(arr.shape[0], -1)
        lab = np.full(arr.shape[0], UNLABELLED) if y is None else y
        labels, centres, inertia = semi_supervised_kmeans(
            flat,
            lab,
            self.n_clusters,
            seed=self.seed,
            n_init=self.n_init,
            max_iter=self.max_iter,
            tol=self.tol,
        )
        self.labels_, self.inertia_ = labels, inertia
        self.cluster_centers_ = centres.astype(np.float32)
        return self

    def fit_predict(self, x: Any, y: Any = None) -> np.ndarray:
        """Cluster ``x`` with the partial labels ``y`` and return ``labels_ (n,)``."""
        self.fit(x, y)
        assert self.labels_ is not None
        return self.labels_

    def _predict(self, x: np.ndarray) -> np.ndarray:
        assert self.cluster_centers_ is not None
        flat = x.reshape(x.shape[0], -1).astype(np.float64)
        if flat.shape[1] != self.cluster_centers_.shape[1]:
            raise ValueError(
                f"X must have {self.cluster_centers_.shape[1]} features as in fit, "
                f"got {flat.shape[1]}"
            )
        return np.asarray(_sq_dists(flat, self.cluster_centers_.astype(np.float64)).argmin(1))
