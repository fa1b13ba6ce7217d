"""Intrinsic dimension of a point cloud: TwoNN, Levina–Bickel MLE, PCA dims, effective rank.

Neighbours come from :func:`embedlab.analysis._knn.knn` (exact; faiss when installed).
The reference implementation the estimators are checked against is scikit-dimension.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np

from embedlab._validation import (
    check_distinct_points,
    check_enough_points,
    check_fraction,
    check_int,
    check_points,
)
from embedlab.analysis._knn import Backend, knn_scaled
from embedlab.analysis._scale import pow2_scale

__all__ = [
    "PCADims",
    "TwoNNFit",
    "effective_rank",
    "mle_id",
    "pca_dims",
    "twonn",
]


@dataclass(frozen=True)
class TwoNNFit:
    """The TwoNN fit: ``y = dimension * x`` through the origin on the kept points.

    Attributes:
        dimension: the estimate (the slope).
        log_mu: ``(n_kept,)`` sorted ``log(r2 / r1)`` of the kept points (the x axis).
        neg_log_survival: ``(n_kept,)`` ``-log(1 - F_emp)`` at those points (the y axis).
        n_points: points given.
        n_duplicates: points dropped because their nearest neighbour is at distance 0.
        discard_fraction: fraction of the largest ratios left out of the fit.
        n_ties: points dropped because their two nearest neighbours are equidistant
            (``mu = r2 / r1 = 1``, e.g. on a grid).
    """

    dimension: float
    log_mu: np.ndarray
    neg_log_survival: np.ndarray
    n_points: int
    n_duplicates: int
    discard_fraction: float
    n_ties: int = 0


@dataclass(frozen=True)
class PCADims:
    """Explained variance of the principal components of a centred cloud.

    Attributes:
        explained_variance_ratio: ``(n_components,)`` fractions of the total variance, largest
            first (``n_components = min(n_points, dim)``).
        thresholds: the fractions asked for.
        dims: ``dims[i]`` = fewest components whose cumulative ratio reaches ``thresholds[i]``.
    """

    explained_variance_ratio: np.ndarray
    thresholds: tuple[float, ...]
    dims: tuple[int, ...]

    @property
    def cumulative(self) -> np.ndarray:
        """``(n_components,)`` cumulative explained-variance ratio."""
        return np.cumsum(self.explained_variance_ratio)


def _drop_duplicates(r1: np.ndarray, who: str) -> tuple[np.ndarray, int]:
    dup = r1 <= 0.0
    n_dup = int(dup.sum())
    if n_dup:
        warnings.warn(
            f"{who}: dropped {n_dup} of {r1.size} points whose nearest neighbour is at "
            "distance 0 (duplicate points)",
            UserWarning,
            stacklevel=3,
        )
    return ~dup, n_dup


def tie_tolerance(pts: np.ndarray) -> float:
    """Distances closer than this are equal up to the rounding of the input coordinates.

    For the distances of :func:`~embedlab.analysis._knn.knn_scaled` (coordinates below 2 in
    magnitude): a few units in the last place of the input dtype, times ``sqrt(dim)``.
    """
    return float(8 * np.finfo(pts.dtype).eps * np.sqrt(pts.shape[1]))


def _twonn_from_distances(
    r1: np.ndarray, r2: np.ndarray, discard_fraction: float, tie_tol: float = 0.0
) -> TwoNNFit:
    keep, n_dup = _drop_duplicates(r1, "twonn")
    tie = keep & (r2 - r1 <= tie_tol)
    n_ties = int(tie.sum())
    if n_ties:
        # log(mu) = 0 carries no slope; on a lattice every point is such a tie
        warnings.warn(
            f"twonn: dropped {n_ties} of {r1.size} points whose two nearest neighbours are "
            "equidistant (r2 = r1, mu = 1: ties, as on a grid)",
            UserWarning,
            stacklevel=3,
        )
    keep &= ~tie
    mu = np.sort(r2[keep] / r1[keep])
    n = mu.size
    n_keep = int(n * (1.0 - discard_fraction))
    if n_keep < 2:
        raise ValueError(
            f"twonn needs at least 2 points left after dropping {n_dup} duplicates (r1 = 0), "
            f"{n_ties} ties (r2 = r1) and the top {discard_fraction:g} of ratios, got {n_keep}; "
            "the intrinsic dimension is undefined on such data"
            + (" (remove duplicate rows first, e.g. np.unique(X, axis=0))" if n_dup else "")
        )
    # Facco et al. 2017: F_emp(mu_(i)) = i / N for the i-th smallest ratio; the largest are
    # discarded (they are the noisiest and F = 1 has no log).
    x = np.log(mu[:n_keep])
    y = -np.log1p(-np.arange(1, n_keep + 1, dtype=np.float64) / n)
    dim = float(x @ y) / float(x @ x)  # every kept log(mu) > 0
    return TwoNNFit(dim, x, y, int(r1.size), n_dup, discard_fraction, n_ties)


@overload
def twonn(
    x: Any,
    *,
    discard_fraction: float = 0.1,
    return_fit: Literal[False] = False,
    backend: Backend = "auto",
) -> float: ...
@overload
def twonn(
    x: Any, *, discard_fraction: float = 0.1, return_fit: Literal[True], backend: Backend = "auto"
) -> TwoNNFit: ...
def twonn(
    x: Any,
    *,
    discard_fraction: float = 0.1,
    return_fit: bool = False,
    backend: Backend = "auto",
) -> float | TwoNNFit:
    """TwoNN intrinsic dimension (Facco, d'Errico, Rodriguez & Laio, Sci. Rep. 2017).

    For each point, ``mu = r2 / r1`` (second over first nearest-neighbour distance) follows a
    Pareto law with shape ``d``, so ``-log(1 - F(mu)) = d log(mu)``; ``d`` is the slope of a
    least-squares line through the origin over the empirical CDF, after discarding the
    largest ``discard_fraction`` of the ratios. Points with ``r1 = 0`` (duplicates) and points
    with ``r2 = r1`` (``mu = 1``: ties, as on a grid, where ``log(mu) = 0`` carries no slope;
    equal up to the rounding of the input's dtype) are dropped, each with a ``UserWarning``
    that counts them. A ``ValueError`` says why when fewer than 2 points are left (all points
    identical, every point duplicated, a lattice).
    Scale-free: the distances are computed on the data rescaled by a power of two, so 1e200
    or 1e-200 data give the same answer as 1. Same convention as scikit-dimension's
    ``TwoNN`` (``F_emp = i / N``, ``i = 1..``).

    Args:
        x: ``(n_points, dim)`` array or tensor, at least 3 points.
        discard_fraction: fraction of the largest ratios left out, in (0, 1).
        return_fit: return the :class:`TwoNNFit` (points and slope) instead of the float.
        backend: nearest-neighbour backend, see :func:`embedlab.analysis._knn.knn`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> plane = rng.normal(size=(2000, 2)) @ rng.normal(size=(2, 50))
        >>> round(twonn(plane))
        2
    """
    discard_fraction = check_fraction("discard_fraction", discard_fraction)
    pts = check_points("X", x)
    check_enough_points("X", pts.shape[0], 3, "TwoNN's 2 nearest neighbours (plus the point)")
    check_distinct_points("X", pts, "the intrinsic dimension")
    dist, _, _ = knn_scaled(pts, 2, backend=backend)
    fit = _twonn_from_distances(dist[:, 0], dist[:, 1], discard_fraction, tie_tolerance(pts))
    return fit if return_fit else fit.dimension


def _mle_from_distances(dist: np.ndarray, ks: Sequence[int], tie_tol: float = 0.0) -> float:
    """Levina–Bickel with MacKay–Ghahramani's correction from sorted kNN distances ``(n, >=k)``.

    Averaged over the ``k`` in ``ks`` (one ``k`` in the default use). Distances may be on any
    common scale (the estimate uses their ratios only); two within ``tie_tol`` count as equal.
    """
    keep, n_dup = _drop_duplicates(dist[:, 0], "mle_id")
    if not keep.any():
        raise ValueError(
            f"mle_id needs points whose nearest neighbour is not a duplicate, but all "
            f"{n_dup} points have an exact duplicate (distance 0); the intrinsic dimension is "
            "undefined: remove duplicate rows first, e.g. np.unique(X, axis=0)"
        )
    estimates = []
    for k in ks:
        d = dist[keep, :k]
        # inverse local estimate: mean over j < k of log(T_k / T_j), 0 for rounding-level ties
        ratio = np.where(d[:, -1:] - d[:, :-1] <= tie_tol, 1.0, d[:, -1:] / d[:, :-1])
        inv = np.log(ratio).sum(axis=1) / (k - 1)
        mean_inv = float(inv.mean())
        if mean_inv > 0:
            estimates.append(1.0 / mean_inv)
        else:
            warnings.warn(
                f"mle_id: the k={k} nearest neighbours of every point are equidistant "
                "(T_k = T_1), so the Levina-Bickel estimate 1 / mean log(T_k / T_j) is inf",
                UserWarning,
                stacklevel=3,
            )
            estimates.append(float("inf"))
    return float(np.mean(estimates))


def mle_id(
    x: Any,
    k: int = 20,
    *,
    k2: int | None = None,
    backend: Backend = "auto",
) -> float:
    """Maximum-likelihood intrinsic dimension (Levina & Bickel, NeurIPS 2004).

    The per-point estimate from the ``k`` nearest neighbours is
    ``m_k(x) = [(1 / (k - 1)) sum_{j<k} log(T_k(x) / T_j(x))]^-1``; the estimates are combined
    by their harmonic mean (the mean of the inverses, MacKay & Ghahramani 2005), as
    scikit-dimension's ``MLE(comb="mle")``. With ``k2``, the estimate is averaged over
    ``k, k+1, ..., k2`` as in the original paper. Points whose nearest neighbour is at
    distance 0 are dropped with a ``UserWarning``; a ``ValueError`` says why when none is left
    (all points identical or every point duplicated). The estimate is ``inf``, with a
    ``UserWarning``, when the ``k`` nearest neighbours of every point are equidistant (the
    formula divides by ``log(T_k / T_j) = 0``, e.g. the vertices of a simplex). Scale-free,
    like :func:`twonn`.

    Args:
        x: ``(n_points, dim)`` array or tensor, at least ``max(k, k2) + 1`` points.
        k: neighbours, ``>= 2``.
        k2: optional upper end of a range of ``k`` to average over.
        backend: nearest-neighbour backend.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> cube = rng.uniform(size=(3000, 3)) @ rng.normal(size=(3, 40))
        >>> 2.5 < mle_id(cube) < 3.5
        True
    """
    k = check_int("k", k, min_value=2)
    k_hi = k if k2 is None else check_int("k2", k2, min_value=k)
    pts = check_points("X", x)
    check_enough_points("X", pts.shape[0], k_hi + 1, f"k={k_hi} nearest neighbours (plus self)")
    check_distinct_points("X", pts, "the intrinsic dimension")
    dist, _, _ = knn_scaled(pts, k_hi, backend=backend)
    return _mle_from_distances(dist, range(k, k_hi + 1), tie_tolerance(pts))


def _spectrum(pts: np.ndarray, *, center: bool) -> np.ndarray:
    """Squared singular values of the (centred) data, largest first, float64, of the data
    divided by a power of two (callers use only their ratios, which this leaves exact)."""
    a, _ = pow2_scale(pts)
    if center:
        a = a - a.mean(axis=0)
    s = np.linalg.svd(a, compute_uv=False)
    return np.asarray(s * s)


def pca_dims(x: Any, thresholds: Sequence[float] = (0.9, 0.95, 0.99)) -> PCADims:
    """Fewest principal components explaining each fraction of the variance.

    Scale-free (1e200 and 1e-200 data give the answer of 1). ``ValueError`` when all points
    are identical (no variance to explain).

    Args:
        x: ``(n_points, dim)`` array or tensor, at least 2 points.
        thresholds: fractions in (0, 1].

    Example:
        >>> rng = np.random.default_rng(0)
        >>> pca_dims(rng.normal(size=(500, 3)) @ rng.normal(size=(3, 20))).dims
        (3, 3, 3)
    """
    ths = tuple(float(t) for t in thresholds)
    for t in ths:
        if not 0.0 < t <= 1.0:
            raise ValueError(f"thresholds must be in (0, 1], got {t}")
    pts = check_points("X", x, min_points=2)
    check_distinct_points("X", pts, "PCA's explained variance (X has zero variance)")
    ev = _spectrum(pts, center=True)[: min(pts.shape)]
    total = float(ev.sum())
    ratio = ev / total
    cum = np.cumsum(ratio)
    # a small tolerance so that e.g. exactly 3 of 3 components reach 1.0 despite round-off
    dims = tuple(min(int(np.searchsorted(cum, t - 1e-12)) + 1, cum.size) for t in ths)
    return PCADims(ratio, ths, dims)


def effective_rank(x: Any, *, center: bool = False) -> float:
    """Effective rank (Roy & Vetterli, EUSIPCO 2007): ``exp`` of the entropy of ``s / sum(s)``.

    ``s`` are the singular values of ``x`` (centred first when ``center``). Between 1 and
    ``min(n_points, dim)``; equal to the rank when the non-zero singular values are equal.
    Scale-free. ``ValueError`` for all-zero data, or identical points with ``center``.

    Example:
        >>> round(effective_rank(np.eye(4)), 6)
        4.0
    """
    pts = check_points("X", x)
    if center:
        check_distinct_points("X", pts, "the effective rank of the centred data (all zeros)")
    s = np.sqrt(_spectrum(pts, center=center))
    total = float(s.sum())
    if total <= 0.0:
        raise ValueError("X must not be all zeros; the effective rank is undefined")
    p = s[s > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))
