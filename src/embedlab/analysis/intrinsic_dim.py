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
    check_enough_points,
    check_fraction,
    check_int,
    check_points,
)
from embedlab.analysis._knn import Backend, knn

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
    """

    dimension: float
    log_mu: np.ndarray
    neg_log_survival: np.ndarray
    n_points: int
    n_duplicates: int
    discard_fraction: float


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


def _twonn_from_distances(r1: np.ndarray, r2: np.ndarray, discard_fraction: float) -> TwoNNFit:
    keep, n_dup = _drop_duplicates(r1, "twonn")
    mu = np.sort(r2[keep] / r1[keep])
    n = mu.size
    n_keep = int(n * (1.0 - discard_fraction))
    if n_keep < 2:
        raise ValueError(
            f"twonn needs at least 2 points left after dropping {n_dup} duplicates and the "
            f"top {discard_fraction:g} of ratios, got {n_keep}"
        )
    # Facco et al. 2017: F_emp(mu_(i)) = i / N for the i-th smallest ratio; the largest are
    # discarded (they are the noisiest and F = 1 has no log).
    x = np.log(mu[:n_keep])
    y = -np.log1p(-np.arange(1, n_keep + 1, dtype=np.float64) / n)
    denom = float(x @ x)
    dim = float(x @ y) / denom if denom > 0 else float("inf")
    return TwoNNFit(dim, x, y, int(r1.size), n_dup, discard_fraction)


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
    largest ``discard_fraction`` of the ratios. Points with ``r1 = 0`` (duplicates) are
    dropped with a ``UserWarning`` that counts them. Same convention as scikit-dimension's
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
    dist, _ = knn(pts, 2, backend=backend)
    fit = _twonn_from_distances(dist[:, 0], dist[:, 1], discard_fraction)
    return fit if return_fit else fit.dimension


def _mle_from_distances(dist: np.ndarray, ks: Sequence[int]) -> float:
    """Levina–Bickel with MacKay–Ghahramani's correction from sorted kNN distances ``(n, >=k)``.

    Averaged over the ``k`` in ``ks`` (one ``k`` in the default use).
    """
    keep, _ = _drop_duplicates(dist[:, 0], "mle_id")
    estimates = []
    for k in ks:
        d = dist[keep, :k]
        # inverse local estimate: mean over j < k of log(T_k / T_j)
        inv = np.log(d[:, -1:] / d[:, :-1]).sum(axis=1) / (k - 1)
        mean_inv = float(inv.mean()) if inv.size else float("nan")
        estimates.append(1.0 / mean_inv if mean_inv > 0 else float("inf"))
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
    distance 0 are dropped with a ``UserWarning``.

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
    dist, _ = knn(pts, k_hi, backend=backend)
    return _mle_from_distances(dist, range(k, k_hi + 1))


def _spectrum(pts: np.ndarray, *, center: bool) -> np.ndarray:
    """Squared singular values of the (centred) data, largest first, float64."""
    a = pts.astype(np.float64)
    if center:
        a = a - a.mean(axis=0)
    s = np.linalg.svd(a, compute_uv=False)
    return np.asarray(s * s)


def pca_dims(x: Any, thresholds: Sequence[float] = (0.9, 0.95, 0.99)) -> PCADims:
    """Fewest principal components explaining each fraction of the variance.

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
    ev = _spectrum(pts, center=True)[: min(pts.shape)]
    total = float(ev.sum())
    if total <= 0.0:
        raise ValueError("X has zero variance (all points equal); PCA dims are undefined")
    ratio = ev / total
    cum = np.cumsum(ratio)
    # a small tolerance so that e.g. exactly 3 of 3 components reach 1.0 despite round-off
    dims = tuple(min(int(np.searchsorted(cum, t - 1e-12)) + 1, cum.size) for t in ths)
    return PCADims(ratio, ths, dims)


def effective_rank(x: Any, *, center: bool = False) -> float:
    """Effective rank (Roy & Vetterli, EUSIPCO 2007): ``exp`` of the entropy of ``s / sum(s)``.

    ``s`` are the singular values of ``x`` (centred first when ``center``). Between 1 and
    ``min(n_points, dim)``; equal to the rank when the non-zero singular values are equal.

    Example:
        >>> round(effective_rank(np.eye(4)), 6)
        4.0
    """
    pts = check_points("X", x)
    s = np.sqrt(_spectrum(pts, center=center))
    total = float(s.sum())
    if total <= 0.0:
        raise ValueError("X is all zeros; the effective rank is undefined")
    p = s[s > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))
